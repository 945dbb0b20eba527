// Small DOM helpers shared by the playground modules: lookup, field errors, the status area.

export const $ = (id) => document.getElementById(id);

/** Create an element: el("a", {href, className, textContent}, ...children). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

/** Field errors live in `<p id="error-<field>">` next to their control. */
const CONTROL_OF = {
  prompt: "prompt",
  negative_prompt: "negative-prompt",
  seed: "seed",
  cfg_scale: "cfg-scale",
  image_url: "dropzone",
  tail_image_url: "tail-pick",
  brush: "canvas",
  trajectory: "canvas",
};

export function showFieldError(field, message) {
  const box = $(`error-${field}`);
  if (!box) return false;
  box.hidden = false;
  box.append(el("span", { className: "err-line", textContent: message }));
  const control = $(CONTROL_OF[field] || "");
  if (control) control.setAttribute("aria-invalid", "true");
  return true;
}

export function clearFieldErrors() {
  for (const box of document.querySelectorAll(".field-error")) {
    box.hidden = true;
    box.textContent = "";
  }
  for (const c of document.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
}

/** The status area under the Generate button. kind: "info" | "error" | "ok". */
export function setStatus(message, kind = "info") {
  const box = $("status");
  box.textContent = message || "";
  box.className = `status ${message ? kind : ""}`;
}

export function formatTime(t) {
  if (t == null) return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleTimeString();
}

export function formatDate(t) {
  if (t == null) return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}
