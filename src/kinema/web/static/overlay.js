// Canvas helpers for the motion brush: drawing the editor and trajectories, mask export and checks.

export function makeCanvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  return c;
}

export function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

/** A tile of diagonal stripes (dark / light) for the static ("frozen") overlay. */
export function stripePattern(ctx, tile) {
  const c = makeCanvas(tile, tile);
  const g = c.getContext("2d");
  g.fillStyle = "#1e293b";
  g.fillRect(0, 0, tile, tile);
  g.strokeStyle = "#cbd5e1";
  g.lineWidth = tile / 3;
  g.beginPath();
  for (const o of [-tile, 0, tile]) {
    g.moveTo(o, tile);
    g.lineTo(o + tile, 0);
  }
  g.stroke();
  return ctx.createPattern(c, "repeat");
}

/** A mask canvas as a PNG of the same size: white where alpha >= 128, black elsewhere. */
export function maskPng(mask) {
  const c = makeCanvas(mask.width, mask.height);
  const ctx = c.getContext("2d");
  ctx.drawImage(mask, 0, 0);
  const img = ctx.getImageData(0, 0, c.width, c.height);
  const px = img.data;
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i + 3] >= 128 ? 255 : 0;
    px[i] = px[i + 1] = px[i + 2] = v;
    px[i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return new Promise((resolve, reject) =>
    c.toBlob((b) => (b ? resolve(b) : reject(new Error("could not encode the mask"))), "image/png"));
}

/**
 * Paint `color` into `mask` (a brush canvas) where the mask image `source` selects pixels, by the server's
 * rule: with some transparent pixel (alpha < 128) the opaque ones, else luminance >= 128.
 */
export function paintFromMask(mask, source, color) {
  const c = makeCanvas(mask.width, mask.height);
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, c.width, c.height);
  const img = ctx.getImageData(0, 0, c.width, c.height);
  const px = img.data;
  let alphaRule = false;
  for (let i = 3; i < px.length; i += 4) if (px[i] < 128) { alphaRule = true; break; }
  const rgb = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
  for (let i = 0; i < px.length; i += 4) {
    const on = alphaRule ? px[i + 3] >= 128 : 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2] >= 127.5;
    [px[i], px[i + 1], px[i + 2]] = rgb;
    px[i + 3] = on ? 255 : 0;
  }
  ctx.putImageData(img, 0, 0);
  const out = mask.getContext("2d");
  out.clearRect(0, 0, mask.width, mask.height);
  out.drawImage(c, 0, 0);
}

/** Whether a mask has a pixel that `maskPng` makes white (alpha >= 128): the same rule as the export. */
export function hasPixels(mask) {
  const ctx = mask.getContext("2d", { willReadFrequently: true });
  const px = ctx.getImageData(0, 0, mask.width, mask.height).data;
  for (let i = 3; i < px.length; i += 4) if (px[i] >= 128) return true;
  return false;
}

/** Points at equal arc length along a dragged path, about `spacing` apart, at most `maxPoints`. */
export function resample(path, spacing, maxPoints) {
  if (path.length < 2 || maxPoints < 1) return path.slice(0, Math.max(0, maxPoints));
  const cum = [0];
  for (let i = 1; i < path.length; i++) {
    cum.push(cum[i - 1] + Math.hypot(path[i].x - path[i - 1].x, path[i].y - path[i - 1].y));
  }
  const total = cum[cum.length - 1];
  if (total === 0) return [path[0]];
  const n = Math.max(2, Math.min(maxPoints, Math.round(total / Math.max(1, spacing)) + 1));
  if (maxPoints < 2) return [path[0]];
  const out = [];
  let j = 1;
  for (let i = 0; i < n; i++) {
    const s = (total * i) / (n - 1);
    while (j < cum.length - 1 && cum[j] < s) j++;
    const seg = cum[j] - cum[j - 1] || 1;
    const t = clamp((s - cum[j - 1]) / seg, 0, 1);
    out.push({ x: path[j - 1].x + (path[j].x - path[j - 1].x) * t, y: path[j - 1].y + (path[j].y - path[j - 1].y) * t });
  }
  return out;
}

/** A trajectory: outlined polyline, point dots, a ring at the start and arrowheads along the way. */
export function drawPath(ctx, pts, color, k, active) {
  ctx.save();
  ctx.globalAlpha = active ? 1 : 0.75;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  const line = () => {
    ctx.beginPath();
    ctx.moveTo(pts[0].x, pts[0].y);
    for (const p of pts.slice(1)) ctx.lineTo(p.x, p.y);
  };
  line();
  ctx.strokeStyle = "rgba(0,0,0,0.75)";
  ctx.lineWidth = 6 * k;
  ctx.stroke();
  line();
  ctx.strokeStyle = color;
  ctx.lineWidth = 3 * k;
  ctx.stroke();

  // Arrowheads: a big one at the end; along the way, mid-segment when there are few points (so the
  // point dots do not hide them), else at a point every ~70 screen px of arc.
  const gap = 70 * k;
  let since = 0;
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    const len = Math.hypot(b.x - a.x, b.y - a.y);
    if (len === 0) continue;
    since += len;
    if (pts.length <= 12 && len > 30 * k) {
      arrowHead(ctx, a, { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }, color, k);
    } else if (pts.length > 12 && since >= gap && i < pts.length - 1) {
      arrowHead(ctx, a, b, color, k);
      since = 0;
    }
  }
  const end = pts.length - 1;
  let from = end - 1;
  while (from >= 0 && pts[from].x === pts[end].x && pts[from].y === pts[end].y) from--;
  if (from >= 0) arrowHead(ctx, pts[from], pts[end], color, k * 1.35);
  if (pts.length <= 40) {
    for (const p of pts.slice(1, -1)) dot(ctx, p, 3 * k, color);
  }
  dot(ctx, pts[0], 6 * k, "#fff", color);
  ctx.restore();
}

function arrowHead(ctx, a, b, color, k) {
  const ang = Math.atan2(b.y - a.y, b.x - a.x);
  const size = 12 * k;
  ctx.beginPath();
  ctx.moveTo(b.x, b.y);
  ctx.lineTo(b.x - size * Math.cos(ang - 0.45), b.y - size * Math.sin(ang - 0.45));
  ctx.lineTo(b.x - size * Math.cos(ang + 0.45), b.y - size * Math.sin(ang + 0.45));
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.strokeStyle = "rgba(0,0,0,0.75)";
  ctx.lineWidth = 1.5 * (k / 1.35);
  ctx.fill();
  ctx.stroke();
}

function dot(ctx, p, r, fill, ring) {
  ctx.beginPath();
  ctx.arc(p.x, p.y, r, 0, Math.PI * 2);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = r / 2;
  ctx.strokeStyle = ring || "rgba(0,0,0,0.75)";
  ctx.stroke();
}

/** The editor canvas: the image, each brush's paint (static striped), trajectories, the brush cursor. */
export function drawEditor(editor) {
  const { ctx, width: w, height: h } = editor;
  const k = editor.scale;
  ctx.save();
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(editor.image, 0, 0, w, h);
  for (const b of editor.brushes) {
    if (!b.painted) continue;
    if (b.kind === "static") {
      const s = editor.scratch.getContext("2d");
      s.globalCompositeOperation = "copy";
      s.drawImage(b.mask, 0, 0);
      s.globalCompositeOperation = "source-in";
      s.fillStyle = stripes(ctx, k);
      s.fillRect(0, 0, w, h);
      ctx.globalAlpha = 0.7;
      ctx.drawImage(editor.scratch, 0, 0);
    } else {
      ctx.globalAlpha = b.id === editor.activeId ? 0.55 : 0.42;
      ctx.drawImage(b.mask, 0, 0);
    }
  }
  ctx.globalAlpha = 1;
  const drag = editor.drag;
  for (const b of editor.dynamicBrushes) {
    let pts = b.points;
    if (drag?.kind === "path" && b.id === editor.activeId) pts = pts.concat(drag.moved ? drag.path : [drag.path[0]]);
    if (pts.length) drawPath(ctx, pts, b.color, k, b.id === editor.activeId);
  }
  const hover = editor.hover;
  if (hover && editor.enabled && editor.tool !== "trajectory") {
    ctx.beginPath();
    ctx.arc(hover.x, hover.y, editor.size / 2, 0, Math.PI * 2);
    ctx.lineWidth = 1.5 * k;
    ctx.strokeStyle = "rgba(0,0,0,0.7)";
    ctx.stroke();
    ctx.setLineDash([4 * k, 4 * k]);
    ctx.strokeStyle = editor.tool === "erase" ? "#fff" : editor.active?.color || "#fff";
    ctx.stroke();
  }
  ctx.restore();
}

const patterns = new WeakMap(); // ctx -> {tile, pattern}

/** The stripe pattern for the static overlay, sized for the current screen scale `k`. */
function stripes(ctx, k) {
  const tile = Math.max(4, Math.round(14 * k));
  let cached = patterns.get(ctx);
  if (cached?.tile !== tile) {
    cached = { tile, pattern: stripePattern(ctx, tile) };
    patterns.set(ctx, cached);
  }
  return cached.pattern;
}
