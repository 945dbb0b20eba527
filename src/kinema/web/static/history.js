// History → "Reuse these inputs": a past request's image, tail image, brushes and settings back in the form.

import { $, setStatus } from "./ui.js";

async function fetchFile(url, name) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status} for ${url}`);
  const blob = await res.blob();
  const type = /^image\/(png|jpeg)$/.test(blob.type) ? blob.type : "image/png";
  return new File([blob], name, { type });
}

async function loadImage(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  return img;
}

function fileName(url, fallback) {
  try {
    const last = new URL(url, window.location.href).pathname.split("/").pop();
    return last && /\.(png|jpe?g)$/i.test(last) ? decodeURIComponent(last) : fallback;
  } catch {
    return fallback;
  }
}

/**
 * Put request `r`'s inputs back into the form. `ctx` has the page's brush and its setImage / setTail /
 * removeTail / updateAll. The uploaded files keep their URLs (nothing is uploaded again).
 */
export async function reuseInputs(r, ctx) {
  const input = r.input || {};
  if (ctx.brush.hasContent && !window.confirm("Reusing these inputs replaces the image and the motion brush. Continue?")) {
    return;
  }
  setStatus("Loading the inputs of that request…", "info", "reuse");
  try {
    // 1. Settings.
    $("prompt").value = input.prompt ?? "";
    $("negative-prompt").value = input.negative_prompt ?? "";
    const duration = document.querySelector(`input[name="duration"][value="${input.duration || "5"}"]`);
    if (duration) duration.checked = true;
    $("cfg-scale").value = String(input.cfg_scale ?? 0.5);
    $("cfg-out").textContent = Number($("cfg-scale").value).toFixed(2);
    $("seed").value = input.seed ?? "";
    // 2. The image (and its URL), then the tail image or the brushes.
    if (input.image_url) {
      const file = await fetchFile(input.image_url, fileName(input.image_url, "image.png"));
      if (!(await ctx.setImage(file, { url: input.image_url, ask: false }))) throw new Error("the image could not be used");
    }
    ctx.removeTail();
    if (input.tail_image_url) {
      const file = await fetchFile(input.tail_image_url, fileName(input.tail_image_url, "tail.png"));
      await ctx.setTail(file, { url: input.tail_image_url });
    }
    const items = [];
    if (input.static_mask_url) items.push({ kind: "static", source: await loadImage(input.static_mask_url), points: [] });
    for (const d of input.dynamic_masks || []) {
      items.push({ kind: "dynamic", source: await loadImage(d.mask_url), points: d.trajectories || [] });
    }
    if (items.length) ctx.brush.load(items);
    ctx.updateAll();
    setStatus("The inputs are back in the form: change what you like and generate.", "ok", "reuse");
  } catch (err) {
    setStatus(`Could not reuse those inputs: ${err.message}`, "error", "reuse");
  }
}
