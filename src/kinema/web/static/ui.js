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

/** Clear one field's errors (its value changed: what was said about the old value no longer holds). */
export function clearFieldError(field) {
  const box = $(`error-${field}`);
  if (!box || box.hidden) return;
  box.hidden = true;
  box.textContent = "";
  const control = $(CONTROL_OF[field] || "");
  const shared = Object.entries(CONTROL_OF).some(([f, c]) => f !== field && c === CONTROL_OF[field] && !$(`error-${f}`)?.hidden);
  if (control && !shared) control.removeAttribute("aria-invalid");
}

export function hasFieldErrors() {
  return Boolean(document.querySelector(".field-error:not([hidden])"));
}

/** Copy `text` to the clipboard and say so on `button` for a moment. */
export async function copyText(text, button) {
  let ok = true;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { value: text });
    document.body.append(area);
    area.select();
    ok = document.execCommand("copy");
    area.remove();
  }
  if (!button) return;
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  button.textContent = ok ? "Copied" : "Copy failed";
  setTimeout(() => (button.textContent = label), 1200);
}

/** A copy button for `text` (a request id, a URL). */
export function copyButton(text, title, testid) {
  const b = el("button", { type: "button", className: "ghost small copy", textContent: "Copy", title,
    dataset: testid ? { testid, copy: text } : { copy: text } });
  b.addEventListener("click", () => copyText(text, b));
  return b;
}

/**
 * The status area under the Generate button. kind: "info" | "error" | "ok". `topic` names what the message
 * is about ("check" for the page's own checks, "submit", "job"), so it can be withdrawn when that is over.
 */
export function setStatus(message, kind = "info", topic = "") {
  const box = $("status");
  box.textContent = message || "";
  box.className = `status ${message ? kind : ""}`;
  box.dataset.topic = message ? topic : "";
}

export function statusTopic() {
  return $("status").dataset.topic || "";
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
