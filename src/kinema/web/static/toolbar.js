// The motion-brush toolbar: tool buttons, brush size, the list of brushes and a hint for the current tool.

import { MAX_DYNAMIC, MAX_POINTS } from "./brush.js";
import { $, el } from "./ui.js";

export function initBrushTools(brush, onChange) {
  $("brush-static").addEventListener("click", () => {
    brush.selectStatic();
    brush.setTool("paint");
  });
  $("brush-dynamic").addEventListener("click", () => {
    brush.addOrNextDynamic();
  });
  $("trajectory").addEventListener("click", () => {
    if (brush.tool === "trajectory") brush.setTool("paint");
    else if (!brush.setTool("trajectory")) brushNotice("Select a dynamic brush first: trajectories belong to dynamic brushes.");
  });
  $("eraser").addEventListener("click", () => brush.setTool(brush.tool === "erase" ? "paint" : "erase"));
  $("undo").addEventListener("click", () => brush.undo());
  $("clear").addEventListener("click", () => brush.clear());
  $("brush-size").addEventListener("input", (e) => {
    brush.setSize(Number(e.target.value));
    $("brush-size-out").textContent = `${brush.size} px`;
  });
  document.addEventListener("keydown", (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement?.tagName || "");
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z" && !typing) {
      e.preventDefault();
      brush.undo();
    }
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
      `(2–${MAX_POINTS} points). The region moves from the first point to the last.`;
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
  $("brush-tools").setAttribute("aria-disabled", String(off));
  for (const id of ["brush-static", "brush-dynamic", "eraser", "undo", "clear", "brush-size"]) $(id).disabled = off;
  $("trajectory").disabled = off || a?.kind !== "dynamic";
  $("undo").disabled = off || !brush.canUndo;
  $("clear").disabled = off || !brush.hasContent;
  $("brush-static").classList.toggle("active", a?.kind === "static" && brush.tool === "paint");
  $("brush-dynamic").classList.toggle("active", a?.kind === "dynamic" && brush.tool === "paint");
  $("trajectory").classList.toggle("active", brush.tool === "trajectory");
  $("eraser").classList.toggle("active", brush.tool === "erase");
  const dyn = brush.dynamicBrushes;
  $("dynamic-label").textContent = dyn.length < MAX_DYNAMIC ? `+ Dynamic brush (${dyn.length}/${MAX_DYNAMIC})`
    : "Next dynamic brush";
  $("dynamic-swatch").style.background = a?.kind === "dynamic" ? a.color : "";
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
      title: "Select this brush" },
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
