// The motion-brush editor: masks and trajectories painted at the image's natural resolution.
//
// One static brush and up to six dynamic brushes, each a mask canvas the size of the image. A pixel
// belongs to at most one brush: painting with one brush removes that area from the others. Dynamic
// brushes carry a trajectory (2 to 77 points, image pixels, top-left origin here; `toApi` converts to
// Kling's bottom-left origin). Emits "change" after every edit.

import { EditHistory } from "./edits.js";
import { clamp, drawEditor, hasPixels, makeCanvas, maskPng, paintFromMask } from "./overlay.js";
import { attachPointer } from "./pointer.js";

export const MAX_DYNAMIC = 6;
export const MIN_POINTS = 2;
export const MAX_POINTS = 77;
export const DYNAMIC_COLORS = ["#ff4d6d", "#ffb020", "#2ecc71", "#3b82f6", "#b267ff", "#17c3d6"];
export const STATIC_COLOR = "#cbd5e1";

export class MotionBrush extends EventTarget {
  constructor(canvas) {
    super();
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.image = null;
    this.width = 0;
    this.height = 0;
    this.brushes = [];
    this.activeId = null;
    this.tool = "paint"; // "paint" | "erase" | "trajectory"
    this.size = 40;
    this.enabled = true;
    this.edits = new EditHistory(this);
    this.hover = null;
    this.drag = null;
    this.nextId = 1;
    this.frame = 0;
    attachPointer(this);
    new ResizeObserver(() => this.fit()).observe(canvas.parentElement);
    window.addEventListener("resize", () => this.fit());
  }

  /** Show the image as large as the editor allows (up or down), keeping its aspect ratio. */
  fit() {
    if (!this.image) return;
    const box = this.canvas.parentElement;
    const style = getComputedStyle(box);
    const availW = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const availH = Math.max(240, window.innerHeight * 0.7);
    const f = Math.min(availW / this.width, availH / this.height, 3);
    if (!(f > 0)) return;
    const w = `${Math.floor(this.width * f)}px`;
    const h = `${Math.floor(this.height * f)}px`;
    if (this.canvas.style.width !== w || this.canvas.style.height !== h) {
      this.canvas.style.width = w;
      this.canvas.style.height = h;
    }
    this.scheduleRender();
  }

  // ---- state -------------------------------------------------------------------------------

  /** Start over on a new image (an HTMLImageElement that has loaded). */
  setImage(image) {
    this.image = image;
    this.width = image.naturalWidth;
    this.height = image.naturalHeight;
    this.canvas.width = this.width;
    this.canvas.height = this.height;
    this.scratch = makeCanvas(this.width, this.height);
    this.brushes = [];
    this.nextId = 1;
    this.edits = new EditHistory(this);
    const shortSide = Math.min(this.width, this.height);
    this.size = Math.max(4, Math.round(shortSide / 14));
    this.brushes.push(this.makeBrush("static", STATIC_COLOR));
    this.activeId = this.brushes[0].id;
    this.tool = "paint";
    this.fit();
    this.changed();
  }

  makeBrush(kind, color) {
    const mask = makeCanvas(this.width, this.height);
    mask.getContext("2d", { willReadFrequently: true }); // read back after every stroke (hasPixels)
    return {
      id: this.nextId++,
      kind,
      color,
      mask,
      painted: false,
      points: [],
      version: 0,
    };
  }

  get staticBrush() {
    return this.brushes.find((b) => b.kind === "static") || null;
  }

  get dynamicBrushes() {
    return this.brushes.filter((b) => b.kind === "dynamic");
  }

  get active() {
    return this.brushes.find((b) => b.id === this.activeId) || null;
  }

  /** 1-based number of a dynamic brush (its place in the list sent to the API). */
  numberOf(brush) {
    return this.dynamicBrushes.indexOf(brush) + 1;
  }

  get hasContent() {
    return this.brushes.some((b) => b.painted || b.points.length > 0);
  }

  selectStatic() {
    if (!this.image) return;
    this.activeId = this.staticBrush.id;
    if (this.tool === "trajectory") this.tool = "paint";
    this.changed();
  }

  /** Add a dynamic brush (up to six) and select it; returns null when six exist (selecting is `select`). */
  addDynamic() {
    if (!this.image) return null;
    const dyn = this.dynamicBrushes;
    if (dyn.length >= MAX_DYNAMIC) return null;
    this.pushUndo();
    const used = new Set(dyn.map((b) => b.color));
    const brush = this.makeBrush("dynamic", DYNAMIC_COLORS.find((c) => !used.has(c)));
    this.brushes.push(brush);
    this.activeId = brush.id;
    this.tool = "paint"; // a dynamic brush is painted first, then given its trajectory
    this.changed();
    return brush;
  }

  /** Select dynamic brush `n` (1-based, as numbered in the list); false when there is none. */
  selectDynamic(n) {
    const brush = this.dynamicBrushes[n - 1];
    if (!brush) return false;
    this.select(brush.id);
    return true;
  }

  select(id) {
    const brush = this.brushes.find((b) => b.id === id);
    if (!brush) return;
    this.activeId = id;
    if (brush.kind === "static" && this.tool === "trajectory") this.tool = "paint";
    this.changed();
  }

  remove(id) {
    const brush = this.brushes.find((b) => b.id === id);
    if (!brush || brush.kind !== "dynamic") return;
    this.pushUndo();
    this.brushes = this.brushes.filter((b) => b !== brush);
    if (this.activeId === id) {
      this.activeId = this.staticBrush.id;
      if (this.tool === "trajectory") this.tool = "paint";
    }
    this.changed();
  }

  setTool(tool) {
    if (tool === "trajectory" && this.active?.kind !== "dynamic") return false;
    this.tool = tool;
    this.changed();
    return true;
  }

  setSize(px) {
    this.size = Math.max(1, Math.round(px));
    this.scheduleRender();
  }

  /** Leave trajectory mode (back to painting with the same brush); false when not in it. */
  leaveTrajectory() {
    if (this.tool !== "trajectory") return false;
    this.tool = "paint";
    this.changed();
    return true;
  }

  setEnabled(on) {
    this.enabled = on;
    this.drag = null;
    this.scheduleRender();
  }

  /** Remove all paint and trajectories; the dynamic brushes, all empty now, go too. Leaves trajectory mode. */
  clear() {
    const removable = this.dynamicBrushes.length > 0;
    if (!this.hasContent && !removable && this.tool !== "trajectory") return;
    if (this.hasContent || removable) this.pushUndo();
    for (const b of this.brushes) {
      b.mask.getContext("2d").clearRect(0, 0, this.width, this.height);
      b.painted = false;
      b.points = [];
      b.version++;
    }
    this.brushes = this.brushes.filter((b) => b.kind === "static");
    this.activeId = this.staticBrush.id;
    this.tool = "paint";
    this.changed();
  }

  /**
   * Brushes read back from a request's masks (History → Reuse): `[{kind, source, points}]`, `source` a loaded
   * mask image, `points` in Kling's bottom-left-origin pixels. Undoable like any edit.
   */
  load(items) {
    this.pushUndo();
    this.brushes = this.brushes.filter((b) => b.kind === "static");
    for (const item of items) {
      let b = item.kind === "static" ? this.staticBrush : null;
      if (!b) {
        if (this.dynamicBrushes.length >= MAX_DYNAMIC) continue;
        const used = new Set(this.dynamicBrushes.map((d) => d.color));
        b = this.makeBrush("dynamic", DYNAMIC_COLORS.find((c) => !used.has(c)));
        this.brushes.push(b);
      }
      paintFromMask(b.mask, item.source, b.color);
      b.painted = hasPixels(b.mask);
      b.points = (item.points || []).map((p) => ({ x: clamp(Math.round(p.x), 0, this.width - 1),
        y: clamp(this.height - 1 - Math.round(p.y), 0, this.height - 1) }));
      b.version++;
    }
    this.activeId = (this.dynamicBrushes[0] || this.staticBrush).id;
    this.tool = "paint";
    this.changed();
  }

  clearTrajectory(id) {
    const brush = this.brushes.find((b) => b.id === id);
    if (!brush || brush.points.length === 0) return;
    this.pushUndo();
    brush.points = [];
    brush.version++;
    this.changed();
  }

  // ---- undo / redo (kept by ./edits.js) -----------------------------------------------------

  /** Called before every edit: remember the state, and forget what could be redone. */
  pushUndo() {
    this.edits.push();
  }

  get canUndo() {
    return this.edits.canUndo;
  }

  get canRedo() {
    return this.edits.canRedo;
  }

  undo() {
    if (this.edits.undo()) this.afterRestore();
  }

  redo() {
    if (this.edits.redo()) this.afterRestore();
  }

  afterRestore() {
    if (!this.brushes.some((b) => b.id === this.activeId)) this.activeId = this.staticBrush.id;
    if (this.tool === "trajectory" && this.active?.kind !== "dynamic") this.tool = "paint";
    this.changed();
  }

  // ---- pointer input (handled by ./pointer.js) ------------------------------------------------

  toImage(e) {
    const r = this.canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) * this.width) / r.width;
    const y = ((e.clientY - r.top) * this.height) / r.height;
    return { x: clamp(x, 0, this.width - 1), y: clamp(y, 0, this.height - 1) };
  }

  /** Image pixels per screen pixel. */
  get scale() {
    const w = this.canvas.getBoundingClientRect().width;
    return w > 0 ? this.width / w : 1;
  }

  // ---- output ------------------------------------------------------------------------------

  /** Problems the editor can see before submitting: `[{brush, field: "mask"|"trajectory", msg}]`. */
  problems() {
    const out = [];
    for (const b of this.dynamicBrushes) {
      const n = this.numberOf(b);
      if (b.painted && b.points.length < MIN_POINTS) {
        out.push({ brush: b, field: "trajectory",
          msg: `Dynamic brush ${n}: draw its trajectory (at least ${MIN_POINTS} points) with the Trajectory tool.` });
      } else if (!b.painted && b.points.length > 0) {
        out.push({ brush: b, field: "mask", msg: `Dynamic brush ${n}: paint the region that should move.` });
      }
    }
    return out;
  }

  /** The brushes to send: `{staticBrush|null, dynamic: [{brush, trajectories}]}` with bottom-left-origin points. */
  toApi() {
    const s = this.staticBrush;
    return {
      staticBrush: s && s.painted ? s : null,
      dynamic: this.dynamicBrushes
        .filter((b) => b.painted)
        .map((b) => ({ brush: b, trajectories: b.points.map((p) => ({ x: p.x, y: this.height - 1 - p.y })) })),
    };
  }

  /** The mask as a PNG at the image's resolution: white where the brush painted, black elsewhere. */
  maskBlob(brush) {
    return maskPng(brush.mask);
  }

  // ---- drawing -----------------------------------------------------------------------------

  changed() {
    this.scheduleRender();
    this.dispatchEvent(new Event("change"));
  }

  scheduleRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    if (this.image) drawEditor(this);
  }
}
