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
    "error", "invalid");
  document.querySelector(".field-error:not([hidden])")?.scrollIntoView({ block: "center", behavior: "smooth" });
}

// ---- the page's own checks, in the server's words (kinema/media/images.py: check_input_image) ----------

export const MIN_SIDE = 300;
export const MAX_ASPECT = 2.5;

/** What the server would say about an input or tail image of w×h pixels, or "" when it is fine. */
export function imageSizeProblem(w, h) {
  if (Math.min(w, h) < MIN_SIDE) return `the image is ${w}x${h}; each side must be at least ${MIN_SIDE} px`;
  const aspect = w / h;
  if (aspect > MAX_ASPECT || aspect < 1 / MAX_ASPECT) {
    return `the image is ${w}x${h} (aspect ${fixed2(aspect)}); the aspect ratio must be between 1:2.5 and 2.5:1`;
  }
  return "";
}

/** `x` with two decimals as Python's `f"{x:.2f}"` writes it: exact ties go to the even digit (3.125 -> 3.12). */
function fixed2(x) {
  const scaled = x * 100;
  const floor = Math.floor(scaled);
  const frac = scaled - floor;
  const n = frac > 0.5 ? floor + 1 : frac < 0.5 ? floor : floor % 2 === 0 ? floor : floor + 1;
  return (n / 100).toFixed(2);
}

// ---- errors as sentences (history, status) ------------------------------------------------------------

/** A 422 `loc` as the name a user knows: "Image", "Dynamic brush 2 trajectory, point 3", "Seed". */
export function fieldName(loc) {
  const parts = Array.isArray(loc) ? loc.slice(loc[0] === "body" ? 1 : 0) : [];
  const [field, index, sub, point] = parts;
  if (field === "image_url") return "Image";
  if (field === "tail_image_url") return "Tail image";
  if (field === "static_mask_url") return "Static brush";
  if (field === "dynamic_masks") {
    if (typeof index !== "number") return "Dynamic brushes";
    const name = `Dynamic brush ${index + 1}`;
    if (sub === "trajectories") return typeof point === "number" ? `${name} trajectory, point ${point + 1}` : `${name} trajectory`;
    return `${name} mask`;
  }
  if (!field) return "Request";
  const words = String(field).replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function sentence(text) {
  const t = String(text).trim();
  if (!t) return "";
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

/** A request's error (a sentence, fal's 422 list, or that list as a JSON string) as readable sentences. */
export function errorSentences(error) {
  let value = error;
  if (typeof value === "string" && /^\s*[[{]/.test(value)) {
    try {
      value = JSON.parse(value);
    } catch {
      // not JSON after all: shown as it is
    }
  }
  if (value && typeof value === "object" && !Array.isArray(value) && "detail" in value) value = value.detail;
  if (Array.isArray(value)) {
    return value.map((item) => (item && typeof item === "object"
      ? `${fieldName(item.loc)}: ${sentence(item.msg || "invalid value")}` : sentence(item))).join("\n");
  }
  if (value == null) return "";
  return sentence(typeof value === "string" ? value : JSON.stringify(value));
}
