// Pointer input on the motion-brush canvas: painting and erasing strokes, clicked or dragged trajectories.

import { MAX_POINTS } from "./brush.js";
import { hasPixels, resample } from "./overlay.js";

const CLICK_SLOP_PX = 4; // screen pixels a click may wander before it counts as a drag
const RESAMPLE_SCREEN_PX = 28; // spacing of points resampled from a dragged path, in screen pixels

/** Listen to the editor's canvas; `ed` is the MotionBrush. */
export function attachPointer(ed) {
  const canvas = ed.canvas;
  canvas.addEventListener("pointerdown", (e) => onDown(ed, e));
  canvas.addEventListener("pointermove", (e) => onMove(ed, e));
  canvas.addEventListener("pointerup", () => onUp(ed));
  canvas.addEventListener("pointercancel", () => onUp(ed));
  canvas.addEventListener("pointerleave", () => {
    ed.hover = null;
    ed.scheduleRender();
  });
}

function onDown(ed, e) {
  if (!ed.image || !ed.enabled || e.button !== 0) return;
  const p = ed.toImage(e);
  ed.canvas.setPointerCapture(e.pointerId);
  e.preventDefault();
  if (ed.tool === "trajectory") {
    const brush = ed.active;
    if (brush?.kind !== "dynamic") return;
    if (brush.points.length >= MAX_POINTS) {
      ed.dispatchEvent(new CustomEvent("notice", { detail: `A trajectory has at most ${MAX_POINTS} points.` }));
      return;
    }
    ed.drag = { kind: "path", path: [p], sx: e.clientX, sy: e.clientY, moved: false };
  } else {
    ed.pushUndo();
    ed.drag = { kind: "paint", last: p, touched: new Set() };
    paintSegment(ed, p, p);
  }
  ed.scheduleRender();
}

function onMove(ed, e) {
  if (!ed.image) return;
  const p = ed.toImage(e);
  ed.hover = p;
  const d = ed.drag;
  if (d?.kind === "paint") {
    paintSegment(ed, d.last, p);
    d.last = p;
  } else if (d?.kind === "path") {
    if (Math.hypot(e.clientX - d.sx, e.clientY - d.sy) > CLICK_SLOP_PX) d.moved = true;
    d.path.push(p);
  }
  ed.scheduleRender();
}

function onUp(ed) {
  const d = ed.drag;
  ed.drag = null;
  if (!d) return;
  if (d.kind === "paint") {
    for (const b of d.touched) {
      b.painted = hasPixels(b.mask);
      b.version++;
    }
    ed.changed();
    return;
  }
  const brush = ed.active;
  if (brush?.kind !== "dynamic") return;
  const room = MAX_POINTS - brush.points.length;
  let added = d.moved ? resample(d.path, (RESAMPLE_SCREEN_PX * ed.scale), room) : [d.path[0]];
  added = added.map((q) => ({ x: Math.round(q.x), y: Math.round(q.y) }));
  const last = brush.points[brush.points.length - 1];
  if (last && added.length && added[0].x === last.x && added[0].y === last.y) added.shift();
  if (!added.length) return;
  ed.pushUndo();
  brush.points = brush.points.concat(added.slice(0, room));
  brush.version++;
  ed.changed();
}

function paintSegment(ed, a, b) {
  const d = ed.drag;
  const active = ed.active;
  for (const brush of ed.brushes) {
    const erase = ed.tool === "erase" || brush !== active;
    if (erase && !brush.painted && !d.touched.has(brush)) continue;
    const ctx = brush.mask.getContext("2d");
    ctx.save();
    ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = erase ? "#000" : brush.color;
    ctx.lineWidth = ed.size;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    if (a.x === b.x && a.y === b.y) {
      ctx.arc(a.x, a.y, ed.size / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
      ctx.stroke();
    }
    ctx.restore();
    d.touched.add(brush);
    if (!erase) brush.painted = true;
  }
}
