// kinema playground: wires the key, inputs, motion brush, submit, live job, API panel and history.

import { Api, ApiError } from "./api.js";
import { MotionBrush } from "./brush.js";
import { JobView, refreshHistory } from "./job.js";
import { curlSnippet, jsSnippet, pythonSnippet } from "./snippets.js";
import { initBrushTools, renderBrushTools } from "./toolbar.js";
import { $, clearFieldErrors, setStatus, showFieldError } from "./ui.js";
import { showValidation } from "./validation.js";

const api = new Api();
const brush = new MotionBrush($("canvas"));
const state = {
  image: null, // {file, img, width, height, upload: Promise<string>, url}
  tail: null, // {file, objectUrl, upload: Promise<string>, url}
  maskUploads: new Map(), // brush id -> {version, promise, url}
  busy: false,
  lang: "curl",
};

const job = new JobView(api, {
  onInvalid: (items) => showValidation(items, state.lastSentDynamic || [], brush),
  onDone: () => loadHistory(),
});

// ---- 1. API key ------------------------------------------------------------------------------

function initKey() {
  const input = $("api-key");
  input.value = api.key;
  const apply = () => {
    api.key = input.value.trim();
    updateKeyState();
    loadHistory();
  };
  input.addEventListener("change", apply);
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    apply();
  });
  input.addEventListener("input", () => {
    api.key = input.value.trim();
    updateKeyState();
  });
  $("key-toggle").addEventListener("click", () => {
    input.type = input.type === "password" ? "text" : "password";
    $("key-toggle").textContent = input.type === "password" ? "show" : "hide";
  });
  updateKeyState();
}

function updateKeyState(problem) {
  const has = Boolean(api.key);
  $("key-hint").hidden = has && !problem;
  const s = $("key-state");
  s.textContent = problem || (has ? "saved in this browser" : "");
  s.className = `key-state ${problem ? "bad" : has ? "ok" : ""}`;
}

// ---- 2. Image and tail image -----------------------------------------------------------------

async function setImage(file) {
  clearFieldErrors();
  if (!file) return;
  if (!/^image\/(png|jpeg)$/.test(file.type)) {
    showFieldError("image_url", `“${file.name}” is not a JPEG or PNG image.`);
    return;
  }
  const img = new Image();
  img.src = URL.createObjectURL(file);
  try {
    await img.decode();
  } catch {
    showFieldError("image_url", `“${file.name}” could not be decoded as an image.`);
    return;
  }
  if (state.image) URL.revokeObjectURL(state.image.img.src);
  const hadBrush = brush.hasContent;
  const entry = { file, img, width: img.naturalWidth, height: img.naturalHeight, url: null };
  entry.upload = upload(file, file.name, file.type).then((url) => {
    entry.url = url;
    if (state.image === entry) imageInfo();
    updateSnippet();
    return url;
  });
  entry.upload.catch((err) => {
    if (state.image === entry) {
      showFieldError("image_url", `Upload failed: ${err.message}`);
      imageInfo();
    }
  });
  state.image = entry;
  state.maskUploads.clear();
  $("drop-empty").hidden = true;
  $("stage").hidden = false;
  brush.setImage(img);
  $("image-change").hidden = false;
  const short = Math.min(entry.width, entry.height);
  $("brush-size").max = String(Math.max(60, Math.round(short / 3)));
  $("brush-size").value = String(brush.size);
  imageInfo(hadBrush ? "The motion brush was reset for the new image." : "");
  updateAll();
}

function imageInfo(extra = "") {
  const im = state.image;
  if (!im) return;
  const up = im.url ? "uploaded" : "uploading…";
  $("image-info").textContent = `${im.file.name} · ${im.width}×${im.height} px · ${up}${extra ? " · " + extra : ""}`;
}

async function setTail(file) {
  if (!file) return;
  if (brush.hasContent) return; // the picker is disabled then; drops are refused the same way
  if (!/^image\/(png|jpeg)$/.test(file.type)) {
    clearFieldErrors();
    showFieldError("tail_image_url", `“${file.name}” is not a JPEG or PNG image.`);
    return;
  }
  if (state.tail) URL.revokeObjectURL(state.tail.objectUrl);
  const entry = { file, objectUrl: URL.createObjectURL(file), url: null };
  entry.upload = upload(file, file.name, file.type).then((url) => {
    entry.url = url;
    updateSnippet();
    return url;
  });
  entry.upload.catch((err) => showFieldError("tail_image_url", `Upload failed: ${err.message}`));
  state.tail = entry;
  $("tail-thumb").src = entry.objectUrl;
  updateAll();
}

function removeTail() {
  if (state.tail) URL.revokeObjectURL(state.tail.objectUrl);
  state.tail = null;
  $("tail-input").value = "";
  updateAll();
}

async function upload(blob, name, type) {
  try {
    const file = await api.upload(blob, name, type);
    return file.url;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) updateKeyState("key rejected");
    throw err;
  }
}

function initInputs() {
  $("image-input").addEventListener("change", (e) => setImage(e.target.files[0]));
  $("tail-input").addEventListener("change", (e) => setTail(e.target.files[0]));
  $("tail-remove").addEventListener("click", removeTail);
  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) setImage(file);
  });
  $("drop-empty").addEventListener("click", (e) => {
    if (e.target.tagName !== "LABEL") $("image-input").click();
  });
  for (const id of ["prompt", "negative-prompt", "seed", "cfg-scale"]) $(id).addEventListener("input", updateSnippet);
  for (const r of document.querySelectorAll('input[name="duration"]')) r.addEventListener("change", updateSnippet);
  $("cfg-scale").addEventListener("input", () => {
    $("cfg-out").textContent = Number($("cfg-scale").value).toFixed(2);
  });
}

// ---- 3. Motion brush toolbar -----------------------------------------------------------------

/** Tail image and motion brush exclude each other (as in Kling's API): lock whichever is not in use. */
function renderExclusion() {
  const tail = Boolean(state.tail);
  brush.setEnabled(!tail);
  $("brush-off").hidden = !tail;
  $("tail-thumb").hidden = !tail;
  $("tail-remove").hidden = !tail;
  $("tail-pick").hidden = tail;
  const locked = !tail && brush.hasContent;
  $("tail-input").disabled = locked;
  $("tail-pick").classList.toggle("disabled", locked);
  $("tail-note").textContent = tail
    ? `${state.tail.file.name}: the video ends on this image. The motion brush is off while it is set.`
    : locked
      ? "A tail image cannot be combined with the motion brush: clear the brush (Clear) to use one."
      : "";
}

function updateAll() {
  renderBrushTools(brush, { hasImage: Boolean(state.image), tailSet: Boolean(state.tail) });
  renderExclusion();
  updateSnippet();
}

// ---- 4. The request --------------------------------------------------------------------------

/** The JSON body for the current inputs; `urls` gives the uploaded image / tail / mask URLs. */
function buildInput(urls) {
  const input = {
    prompt: $("prompt").value,
    image_url: urls.image,
    duration: document.querySelector('input[name="duration"]:checked').value,
    negative_prompt: $("negative-prompt").value,
    cfg_scale: Number($("cfg-scale").value),
  };
  if (urls.tail) input.tail_image_url = urls.tail;
  if (urls.staticMask) input.static_mask_url = urls.staticMask;
  if (urls.dynamic.length) input.dynamic_masks = urls.dynamic;
  const seed = $("seed").value.trim();
  if (seed !== "") input.seed = Number(seed);
  return input;
}

function maskUpload(b) {
  const cached = state.maskUploads.get(b.id);
  if (cached && cached.version === b.version) return cached.promise;
  const entry = { version: b.version, url: null };
  entry.promise = brush.maskBlob(b)
    .then((blob) => upload(blob, b.kind === "static" ? "static-mask.png" : `dynamic-mask-${brush.numberOf(b)}.png`, "image/png"))
    .then((url) => (entry.url = url));
  entry.promise.catch(() => state.maskUploads.delete(b.id));
  state.maskUploads.set(b.id, entry);
  return entry.promise;
}

function cachedMaskUrl(b) {
  const c = state.maskUploads.get(b.id);
  return c && c.version === b.version && c.url ? c.url : null;
}

async function submit() {
  // 1. Check what the page can check.
  clearFieldErrors();
  setStatus("");
  let ok = true;
  if (!api.key) {
    updateKeyState("enter your API key first");
    $("api-key").focus();
    ok = false;
  }
  if (!state.image) {
    showFieldError("image_url", "Choose an image first (drop it on the box or use “choose a file”).");
    ok = false;
  }
  const plan = state.tail ? { staticBrush: null, dynamic: [] } : brush.toApi();
  if (!state.tail) {
    for (const p of brush.problems()) {
      showFieldError(p.field === "trajectory" ? "trajectory" : "brush", p.msg);
      ok = false;
    }
  }
  if (!ok) {
    setStatus("Fix the highlighted fields, then generate again.", "error");
    return;
  }
  // 2. Upload what is not uploaded yet, then submit to the queue.
  setBusy(true);
  try {
    setStatus("Uploading inputs…");
    const [image, tail, staticMask, ...dynUrls] = await Promise.all([
      state.image.upload,
      state.tail ? state.tail.upload : null,
      plan.staticBrush ? maskUpload(plan.staticBrush) : null,
      ...plan.dynamic.map((d) => maskUpload(d.brush)),
    ]);
    const dynamic = plan.dynamic.map((d, i) => ({ mask_url: dynUrls[i], trajectories: d.trajectories }));
    const input = buildInput({ image, tail, staticMask, dynamic });
    state.lastSentDynamic = plan.dynamic.map((d) => d.brush);
    updateSnippet();
    setStatus("Submitting…");
    const submitted = await api.submit(input);
    setStatus(`Submitted as ${submitted.request_id}.`);
    job.start(submitted);
    loadHistory(submitted.request_id);
  } catch (err) {
    if (err instanceof ApiError && err.validationItems) {
      showValidation(err.validationItems, state.lastSentDynamic || [], brush);
    } else if (err instanceof ApiError && err.status === 401) {
      updateKeyState("key rejected");
      setStatus(`The server refused the key: ${err.message}`, "error");
    } else {
      setStatus(`Could not submit: ${err.message}`, "error");
    }
  } finally {
    setBusy(false);
  }
}

function setBusy(on) {
  state.busy = on;
  $("submit").disabled = on;
  $("submit").textContent = on ? "Working…" : "Generate video";
}

// ---- 5. API panel ----------------------------------------------------------------------------

let snippetTimer = 0;

function updateSnippet() {
  const panel = $("api-panel");
  const s = brush.staticBrush;
  const plan = state.tail || !state.image ? { staticBrush: null, dynamic: [] } : brush.toApi();
  const pending = "<uploaded when you press Generate>";
  const input = buildInput({
    image: state.image?.url || "<upload an image first>",
    tail: state.tail ? state.tail.url || "<uploading…>" : null,
    staticMask: plan.staticBrush ? cachedMaskUrl(s) || pending : null,
    dynamic: plan.dynamic.map((d) => ({ mask_url: cachedMaskUrl(d.brush) || pending, trajectories: d.trajectories })),
  });
  const make = { curl: curlSnippet, python: pythonSnippet, js: jsSnippet }[state.lang];
  $("snippet").textContent = make(api.origin, input);
  // While the panel is open, upload changed masks shortly after painting stops, so the URLs are real.
  const stale = [plan.staticBrush, ...plan.dynamic.map((d) => d.brush)].filter((b) => b && !cachedMaskUrl(b));
  clearTimeout(snippetTimer);
  if (panel.open && stale.length && api.key) {
    snippetTimer = setTimeout(() => {
      Promise.all(stale.map(maskUpload)).then(updateSnippet, () => {});
    }, 900);
  }
}

function initApiPanel() {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      state.lang = tab.dataset.lang;
      for (const t of document.querySelectorAll(".tab")) t.setAttribute("aria-selected", String(t === tab));
      updateSnippet();
    });
  }
  $("api-panel").addEventListener("toggle", updateSnippet);
  $("copy-snippet").addEventListener("click", async () => {
    const text = $("snippet").textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const range = document.createRange();
      range.selectNodeContents($("snippet"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      document.execCommand("copy");
    }
    $("copy-snippet").textContent = "Copied";
    setTimeout(() => ($("copy-snippet").textContent = "Copy"), 1200);
  });
}

// ---- 6. History ------------------------------------------------------------------------------

function loadHistory(currentId) {
  if (currentId) state.currentId = currentId;
  return refreshHistory(api, {
    currentId: state.currentId,
    onPlay: (r) => {
      job.showVideo(r.result, r.request_id);
      $("output").scrollIntoView({ block: "center", behavior: "smooth" });
    },
  });
}

// ---- start -----------------------------------------------------------------------------------

initKey();
initInputs();
initBrushTools(brush, () => updateAll());
initApiPanel();
$("submit").addEventListener("click", submit);
$("history-refresh").addEventListener("click", () => loadHistory());
updateAll();
loadHistory();
document.body.dataset.ready = "1";
