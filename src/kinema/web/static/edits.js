// Undo and redo for the motion brush: snapshots of every brush's mask and trajectory, and their order.

import { makeCanvas } from "./overlay.js";

const DEPTH = 25; // snapshots kept each way (a 512x512 mask is 1 MiB of canvas)

export class EditHistory {
  /** `editor` is the MotionBrush: its `brushes`, `activeId`, `width` and `height` are saved and restored. */
  constructor(editor) {
    this.editor = editor;
    this.undoStack = [];
    this.redoStack = [];
  }

  snapshot() {
    const e = this.editor;
    const snap = new Map();
    for (const b of e.brushes) {
      let mask = null;
      if (b.painted) {
        mask = makeCanvas(e.width, e.height);
        mask.getContext("2d").drawImage(b.mask, 0, 0);
      }
      snap.set(b.id, { brush: b, mask, points: b.points.slice() });
    }
    return { snap, order: e.brushes.slice(), activeId: e.activeId };
  }

  restore(entry) {
    const e = this.editor;
    e.brushes = entry.order.slice();
    for (const { brush, mask, points } of entry.snap.values()) {
      const ctx = brush.mask.getContext("2d");
      ctx.clearRect(0, 0, e.width, e.height);
      if (mask) ctx.drawImage(mask, 0, 0);
      brush.painted = Boolean(mask);
      brush.points = points;
      brush.version++;
    }
    e.activeId = entry.activeId;
  }

  /** Before an edit: remember the state, and forget what could be redone. */
  push() {
    this.undoStack.push(this.snapshot());
    if (this.undoStack.length > DEPTH) this.undoStack.shift();
    this.redoStack = [];
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  get canRedo() {
    return this.redoStack.length > 0;
  }

  /** Back one edit; false when there is none. */
  undo() {
    const entry = this.undoStack.pop();
    if (!entry) return false;
    this.redoStack.push(this.snapshot());
    this.restore(entry);
    return true;
  }

  /** Forward one undone edit; false when there is none. */
  redo() {
    const entry = this.redoStack.pop();
    if (!entry) return false;
    this.undoStack.push(this.snapshot());
    if (this.undoStack.length > DEPTH) this.undoStack.shift();
    this.restore(entry);
    return true;
  }
}
