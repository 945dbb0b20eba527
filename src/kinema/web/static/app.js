// kinema playground: wires the key, inputs, motion brush, submit, live job, API panel and history.

import { Api, ApiError } from "./api.js";
import { MotionBrush } from "./brush.js";
import { reuseInputs } from "./history.js";
import { Uploader, imageInfo, readImage } from "./inputs.js";
import { JobView, refreshHistory } from "./job.js";
import { KeyField } from "./key.js";
import { curlSnippet, jsSnippet, pythonSnippet } from "./snippets.js";
import { initBrushTools, renderBrushTools } from "./toolbar.js";
import { $, clearFieldError, clearFieldErrors, copyText, hasFieldErrors, setStatus, showFieldError,
  statusTopic } from "./ui.js";
import { showValidation } from "./validation.js";

const api = new Api();
const brush = new MotionBrush($("canvas"));
const state = {
  image: null, // InputFile for image_url
  tail: null, // InputFile for tail_image_url
  maskUploads: new Map(), // brush id -> {version, promise, url}
  busy: false,
  checking: false, // after a refused Generate: the page's checks are shown live until they pass
  attempt: 0, // Generate presses so far: a job reports to the status line only while it is the latest
  lang: "curl",
};

const keyField = new KeyField(api, {
  onAccepted: () => {
    uploader.retry([state.image, state.tail]);
    loadHistory();
  },
});
const uploader = new Uploader(api, keyField, {
  isCurrent: (e) => e === state.image || e === state.tail,
  onUploaded: (e) => {
    if (e === state.image) imageInfo(e);
    updateSnippet();
  },
});
const job = new JobView(api, {
  onInvalid: (items) => showValidation(items, state.lastSentDynamic || [], brush),
  onDone: () => loadHistory(),
  isLatest: (attempt) => attempt === state.attempt,
});

// ---- 1. Image and tail image -----------------------------------------------------------------

/** Use `file` as the input image; `url` when it is on the server already (History → Reuse). */
async function setImage(file, { url = null, ask = true } = {}) {
  if (!file) return false;
  const entry = await readImage(file, "image_url");
  if (!entry) return false;
  const hadBrush = brush.hasContent;
  if (hadBrush && ask && !window.confirm(
    "Changing the image clears the motion brush (its masks belong to this image). Change the image?")) {
    URL.revokeObjectURL(entry.objectUrl);
    $("image-input").value = "";
    return false;
  }
  clearFieldError("image_url");
  clearFieldError("brush");
  clearFieldError("trajectory");
  if (state.image) URL.revokeObjectURL(state.image.objectUrl);
  entry.url = url;
  state.image = entry;
  state.maskUploads.clear();
  if (entry.problem) showFieldError("image_url", entry.problem);
  else uploader.ensure(entry);
  $("drop-empty").hidden = true;
  $("stage").hidden = false;
  brush.setImage(entry.img);
  $("image-change").hidden = false;
  const short = Math.min(entry.width, entry.height);
  $("brush-size").max = String(Math.max(60, Math.round(short / 3)));
  $("brush-size").value = String(brush.size);
  imageInfo(entry);
  const note = $("image-note");
  note.hidden = !hadBrush;
  note.textContent = hadBrush ? "The motion brush was reset for the new image." : "";
  updateAll();
  revalidate();
  return true;
}

async function setTail(file, { url = null } = {}) {
  if (!file) return false;
  if (brush.hasContent) return false; // the picker is disabled then; drops are refused the same way
  const entry = await readImage(file, "tail_image_url");
  if (!entry) return false;
  clearFieldError("tail_image_url");
  if (state.tail) URL.revokeObjectURL(state.tail.objectUrl);
  entry.url = url;
  state.tail = entry;
  if (entry.problem) showFieldError("tail_image_url", `Tail image: ${entry.problem}`);
  else uploader.ensure(entry);
  $("tail-thumb").src = entry.objectUrl;
  $("tail-info").textContent = `${entry.width}×${entry.height} px`;
  updateAll();
  revalidate();
  return true;
}

function removeTail() {
  if (state.tail) URL.revokeObjectURL(state.tail.objectUrl);
  state.tail = null;
  $("tail-input").value = "";
  $("tail-info").textContent = "";
  clearFieldError("tail_image_url");
  updateAll();
  revalidate();
}

const FIELD_OF = { prompt: "prompt", "negative-prompt": "negative_prompt", seed: "seed", "cfg-scale": "cfg_scale" };

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
  for (const [id, field] of Object.entries(FIELD_OF)) {
    $(id).addEventListener("input", () => {
      clearFieldError(field); // the value the message was about is gone
      revalidate();
      updateSnippet();
    });
  }
  for (const r of document.querySelectorAll('input[name="duration"]')) {
    r.addEventListener("change", () => {
      clearFieldError("duration");
      revalidate();
      updateSnippet();
    });
  }
  $("cfg-scale").addEventListener("input", () => {
    $("cfg-out").textContent = Number($("cfg-scale").value).toFixed(2);
  });
}

// ---- 2. Motion brush and the tail image exclude each other -----------------------------------

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

function onBrushChange() {
  if (brush.hasContent) $("image-note").hidden = true; // painting on the new image: the reset is old news
  clearFieldError("brush");
  clearFieldError("trajectory");
  updateAll();
  revalidate();
}

// ---- 3. The page's own checks ------------------------------------------------------------------

/** What the page can tell before sending: `[{field, msg}]` ("key" is the key field). */
function problems() {
  const out = [];
  if (!api.key) out.push({ field: "key", msg: "enter your API key first" });
  if (!state.image) {
    out.push({ field: "image_url", msg: "Choose an image first (drop it on the box or use “choose a file”)." });
  } else if (state.image.problem) {
    out.push({ field: "image_url", msg: state.image.problem });
  }
  if (state.tail?.problem) out.push({ field: "tail_image_url", msg: `Tail image: ${state.tail.problem}` });
  if (!state.tail) {
    for (const p of brush.problems()) out.push({ field: p.field === "trajectory" ? "trajectory" : "brush", msg: p.msg });
  }
  return out;
}

function showProblems(list) {
  for (const p of list) {
    if (p.field === "key") keyField.missing();
    else if ($(`error-${p.field}`)?.hidden !== false || !$(`error-${p.field}`).textContent.includes(p.msg)) {
      showFieldError(p.field, p.msg);
    }
  }
}

/** After a refused Generate, keep the page's own messages true: drop the fixed ones, show new ones. */
function revalidate() {
  if (state.checking) {
    const now = problems();
    for (const f of ["image_url", "tail_image_url", "brush", "trajectory"]) {
      const box = $(`error-${f}`);
      const still = now.filter((p) => p.field === f).map((p) => p.msg);
      if (!box.hidden && [...box.children].some((line) => !still.includes(line.textContent))) clearFieldError(f);
    }
    showProblems(now);
    if (!now.length) state.checking = false;
  }
  if (!hasFieldErrors() && ["check", "invalid"].includes(statusTopic())) setStatus("");
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
  const name = b.kind === "static" ? "static-mask.png" : `dynamic-mask-${brush.numberOf(b)}.png`;
  entry.promise = brush.maskBlob(b).then((blob) => uploader.blob(blob, name, "image/png")).then((url) => (entry.url = url));
  entry.promise.catch(() => state.maskUploads.delete(b.id));
  state.maskUploads.set(b.id, entry);
  return entry.promise;
}

function cachedMaskUrl(b) {
  const c = state.maskUploads.get(b.id);
  return c && c.version === b.version && c.url ? c.url : null;
}

async function submit() {
  if (state.busy) return; // one submission at a time (the button is disabled too)
  const attempt = ++state.attempt; // from now on an older job no longer speaks in the status line
  // 1. Check what the page can check, in the server's words.
  clearFieldErrors();
  setStatus("");
  const found = problems();
  if (found.length) {
    state.checking = true;
    showProblems(found);
    setStatus("Fix the highlighted fields, then generate again.", "error", "check");
    return;
  }
  state.checking = false;
  // 2. Upload what is not uploaded yet, then submit to the queue.
  setBusy(true);
  const plan = state.tail ? { staticBrush: null, dynamic: [] } : brush.toApi();
  try {
    setStatus("Uploading inputs…", "info", "submit");
    const [image, tail, staticMask, ...dynUrls] = await Promise.all([
      uploader.ensure(state.image),
      state.tail ? uploader.ensure(state.tail) : null,
      plan.staticBrush ? maskUpload(plan.staticBrush) : null,
      ...plan.dynamic.map((d) => maskUpload(d.brush)),
    ]);
    const dynamic = plan.dynamic.map((d, i) => ({ mask_url: dynUrls[i], trajectories: d.trajectories }));
    const input = buildInput({ image, tail, staticMask, dynamic });
    state.lastSentDynamic = plan.dynamic.map((d) => d.brush);
    updateSnippet();
    setStatus("Submitting…", "info", "submit");
    const submitted = await api.submit(input);
    setStatus("Submitted: the request is followed below.", "info", "job");
    job.start(submitted, attempt);
    loadHistory(submitted.request_id);
  } catch (err) {
    if (err instanceof ApiError && err.validationItems) {
      showValidation(err.validationItems, state.lastSentDynamic || [], brush);
    } else if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      keyField.rejected(err);
      setStatus(`The server refused the key: ${err.message}. Fix the key above, then generate again.`, "error", "submit");
    } else {
      setStatus(`Could not submit: ${err.message}`, "error", "submit");
    }
  } finally {
    setBusy(false);
  }
}

function setBusy(on) {
  state.busy = on;
  $("submit").disabled = on;
  $("submit").textContent = on ? "Submitting…" : "Generate video";
}

// ---- 5. API panel ----------------------------------------------------------------------------

let snippetTimer = 0;

function updateSnippet() {
  const panel = $("api-panel");
  const plan = state.tail || !state.image ? { staticBrush: null, dynamic: [] } : brush.toApi();
  const pending = "<uploaded when you press Generate>";
  const input = buildInput({
    image: state.image?.url || "<upload an image first>",
    tail: state.tail ? state.tail.url || "<uploading…>" : null,
    staticMask: plan.staticBrush ? cachedMaskUrl(plan.staticBrush) || pending : null,
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
  $("copy-snippet").addEventListener("click", () => copyText($("snippet").textContent, $("copy-snippet")));
}

// ---- 6. History ------------------------------------------------------------------------------

function loadHistory(currentId) {
  if (currentId) state.currentId = currentId;
  return refreshHistory(api, {
    currentId: state.currentId,
    onPlay: (r) => job.showVideo(r.result, r.request_id),
    onReuse: (r) => reuseInputs(r, { brush, setImage, setTail, removeTail, updateAll }).then(revalidate),
  });
}

// ---- start -----------------------------------------------------------------------------------

keyField.init();
initInputs();
initBrushTools(brush, onBrushChange);
initApiPanel();
$("submit").addEventListener("click", submit);
$("history-refresh").addEventListener("click", () => loadHistory());
updateAll();
if (!api.key) loadHistory(); // with a key, the key check loads it once the server accepts the key
document.body.dataset.ready = "1";
