// The motion-brush toolbar: tool buttons, brush size, the list of brushes and a hint for the current tool.

import { DYNAMIC_COLORS, MAX_DYNAMIC, MAX_POINTS } from "./brush.js";
import { $, el } from "./ui.js";

// Keyboard shortcuts (listed on the page under the tools): S static, N new dynamic brush, 1-6 select one,
// T trajectory, E eraser, [ ] brush size, Esc leave trajectory, Ctrl+Z undo, Ctrl+Shift+Z / Ctrl+Y redo.
const SIZE_STEP = 1.25; // `[` / `]` scale the brush by this factor (at least 1 px)

export function initBrushTools(brush, onChange) {
  $("brush-static").addEventListener("click", () => {
    brush.selectStatic();
    brush.setTool("paint");
  });
  $("brush-dynamic").addEventListener("click", () => {
    if (!brush.addDynamic()) brushNotice(`At most ${MAX_DYNAMIC} dynamic brushes: select one in the list below.`);
  });
  $("trajectory").addEventListener("click", toggleTrajectory);
  $("eraser").addEventListener("click", () => brush.setTool(brush.tool === "erase" ? "paint" : "erase"));
  $("undo").addEventListener("click", () => brush.undo());
  $("redo").addEventListener("click", () => brush.redo());
  $("clear").addEventListener("click", () => brush.clear());
  $("brush-size").addEventListener("input", (e) => {
    brush.setSize(Number(e.target.value));
    $("brush-size-out").textContent = `${brush.size} px`;
  });

  function toggleTrajectory() {
    if (brush.tool === "trajectory") brush.setTool("paint");
    else if (!brush.setTool("trajectory")) brushNotice("Select a dynamic brush first: trajectories belong to dynamic brushes.");
  }

  function resize(factor) {
    const slider = $("brush-size");
    const next = factor > 1 ? Math.max(brush.size + 1, Math.round(brush.size * factor))
      : Math.min(brush.size - 1, Math.round(brush.size * factor));
    const px = Math.min(Number(slider.max), Math.max(Number(slider.min), next));
    slider.value = String(px);
    brush.setSize(px);
    $("brush-size-out").textContent = `${brush.size} px`;
  }

  document.addEventListener("keydown", (e) => {
    if (!brush.image || $("brush-static").disabled) return; // no image, or the tail image turned the brush off
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "") &&
      document.activeElement.type !== "range";
    if (typing) return;
    const key = e.key.toLowerCase();
    const mod = e.ctrlKey || e.metaKey;
    let done = true;
    if (mod && key === "z") e.shiftKey ? brush.redo() : brush.undo();
    else if (mod && key === "y") brush.redo();
    else if (mod || e.altKey) done = false;
    else if (e.key === "Escape") done = brush.leaveTrajectory();
    else if (e.key === "[") resize(1 / SIZE_STEP);
    else if (e.key === "]") resize(SIZE_STEP);
    else if (key === "s") $("brush-static").click();
    else if (key === "n") $("brush-dynamic").click();
    else if (key === "t") toggleTrajectory();
    else if (key === "e") $("eraser").click();
    else if (/^[1-6]$/.test(e.key)) done = brush.selectDynamic(Number(e.key));
    else done = false;
    if (done) e.preventDefault();
  });
  brush.addEventListener("change", onChange);
  brush.addEventListener("notice", (e) => brushNotice(e.detail));
}

function brushNotice(text) {
  $("tool-hint").textContent = text;
  $("tool-hint").classList.add("notice");
}

function toolHint(brush, { hasImage, tailSet }) {
  if (!hasImage) return "Choose an image to paint on.";
  if (tailSet) return "";
  const a = brush.active;
  if (brush.tool === "erase") return "Eraser: drag over paint of any brush to remove it.";
  if (brush.tool === "trajectory") {
    return `Trajectory of dynamic brush ${brush.numberOf(a)}: click points in order, or drag a path ` +
      `(2–${MAX_POINTS} points). The region moves from the first point to the last. Esc leaves trajectory mode.`;
  }
  if (a?.kind === "dynamic") {
    return `Dynamic brush ${brush.numberOf(a)}: paint what should move, then press Trajectory and draw its path.`;
  }
  return "Static brush: paint what must stay still. Add a dynamic brush to make something move.";
}

/** Buttons, active brush, the list of brushes and the hint, from the editor's state. */
export function renderBrushTools(brush, { hasImage, tailSet }) {
  const has = hasImage;
  const off = !has || tailSet;
  const a = brush.active;
  const dyn = brush.dynamicBrushes;
  $("brush-tools").setAttribute("aria-disabled", String(off));
  for (const id of ["brush-static", "brush-dynamic", "eraser", "undo", "clear", "brush-size"]) $(id).disabled = off;
  $("trajectory").disabled = off || a?.kind !== "dynamic";
  $("undo").disabled = off || !brush.canUndo;
  $("redo").disabled = off || !brush.canRedo;
  $("clear").disabled = off || !(brush.hasContent || dyn.length > 0);
  $("brush-dynamic").disabled = off || dyn.length >= MAX_DYNAMIC;
  $("brush-dynamic").title = dyn.length >= MAX_DYNAMIC
    ? `${MAX_DYNAMIC} dynamic brushes is the most Kling takes: select one in the list below`
    : "Add a dynamic brush (N)";
  $("brush-static").classList.toggle("active", a?.kind === "static" && brush.tool === "paint");
  $("brush-dynamic").classList.remove("active"); // it only adds: the brush list shows which one is selected
  $("trajectory").classList.toggle("active", brush.tool === "trajectory");
  $("eraser").classList.toggle("active", brush.tool === "erase");
  $("dynamic-label").textContent = `+ Dynamic brush (${dyn.length}/${MAX_DYNAMIC})`;
  const used = new Set(dyn.map((b) => b.color));
  $("dynamic-swatch").style.background = DYNAMIC_COLORS.find((c) => !used.has(c)) || ""; // the colour it adds
  $("brush-size-out").textContent = `${brush.size} px`;
  const act = $("active-brush");
  act.textContent = !has ? "" : a?.kind === "dynamic" ? `Active: dynamic brush ${brush.numberOf(a)}` : "Active: static brush";
  act.style.setProperty("--c", a?.color || "transparent");
  act.dataset.active = a ? (a.kind === "static" ? "static" : `dynamic-${brush.numberOf(a)}`) : "";
  const hint = $("tool-hint");
  hint.classList.remove("notice");
  hint.textContent = toolHint(brush, { hasImage, tailSet });

  const list = $("brush-list");
  list.textContent = "";
  if (!has) return;
  for (const b of brush.brushes) {
    const isDyn = b.kind === "dynamic";
    const n = brush.numberOf(b);
    const parts = [b.painted ? "painted" : "not painted"];
    if (isDyn) parts.push(`${b.points.length} point${b.points.length === 1 ? "" : "s"}`);
    const li = el("li", { className: `chip ${b.id === brush.activeId ? "active" : ""} ${b.kind}`,
      dataset: { testid: isDyn ? `brush-chip-${n}` : "brush-chip-static" } });
    const pick = el("button", { type: "button", className: "chip-main", disabled: off,
      title: isDyn ? `Select dynamic brush ${n} (${n})` : "Select the static brush (S)",
      dataset: { testid: isDyn ? `brush-select-${n}` : "brush-select-static" },
      ariaPressed: String(b.id === brush.activeId) },
    el("span", { className: `swatch ${b.kind}`, style: isDyn ? `background:${b.color}` : "" }),
    el("span", { textContent: isDyn ? `Dynamic ${n}` : "Static" }),
    el("span", { className: "chip-meta", textContent: parts.join(" · ") }));
    pick.addEventListener("click", () => brush.select(b.id));
    li.append(pick);
    if (isDyn) {
      if (b.points.length) {
        const reset = el("button", { type: "button", className: "chip-x", textContent: "↺",
          title: "Clear this trajectory", disabled: off });
        reset.addEventListener("click", () => brush.clearTrajectory(b.id));
        li.append(reset);
      }
      const x = el("button", { type: "button", className: "chip-x", textContent: "×",
        title: "Remove this brush", disabled: off });
      x.addEventListener("click", () => brush.remove(b.id));
      li.append(x);
    }
    list.append(li);
  }
}
