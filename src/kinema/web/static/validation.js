// fal's 422 validation items (`[{loc, msg, type}]`) shown next to the playground's fields.

import { setStatus, showFieldError } from "./ui.js";

/**
 * Show fal's 422 items next to the controls they concern; the rest in the status area.
 * `sentDynamic` maps `dynamic_masks[i]` back to the editor's brushes (numbered by `brush.numberOf`).
 */
export function showValidation(items, sentDynamic, brush) {
  const leftovers = [];
  for (const item of items) {
    const loc = Array.isArray(item.loc) ? item.loc.slice(item.loc[0] === "body" ? 1 : 0) : [];
    const msg = item.msg || "invalid value";
    const [field, index, sub, point] = loc;
    let shown = false;
    if (field === "static_mask_url") {
      shown = showFieldError("brush", `Static brush: ${msg}`);
    } else if (field === "dynamic_masks") {
      const b = typeof index === "number" ? sentDynamic[index] : null;
      const name = b ? `Dynamic brush ${brush.numberOf(b) || index + 1}` : "Dynamic brushes";
      if (sub === "trajectories") {
        const where = typeof point === "number" ? ` (point ${point + 1})` : "";
        shown = showFieldError("trajectory", `${name} trajectory${where}: ${msg}`);
      } else {
        shown = showFieldError("brush", `${name}${sub === "mask_url" ? " mask" : ""}: ${msg}`);
      }
      if (b) document.querySelector(`[data-testid="brush-chip-${brush.numberOf(b)}"]`)?.classList.add("invalid");
    } else if (field) {
      shown = showFieldError(field, msg);
    }
    if (!shown) leftovers.push(`${loc.join(".") || "request"}: ${msg}`);
  }
  setStatus(`The server rejected the request (422). ${leftovers.length ? leftovers.join(" · ") : "See the highlighted fields."}`,
    "error");
  document.querySelector(".field-error:not([hidden])")?.scrollIntoView({ block: "center", behavior: "smooth" });
}
