// Following one request live (SSE status stream, polling fallback), its result, and the history list.

import { ApiError } from "./api.js";
import { $, copyButton, copyText, el, formatDate, formatTime, setStatus } from "./ui.js";
import { errorSentences } from "./validation.js";

const POLL_MS = 1000;

/** The label a status shows: queued / running / done / failed / cancelled. */
export function statusLabel(s) {
  if (s.status === "IN_QUEUE") return "queued";
  if (s.status === "IN_PROGRESS") return "running";
  if (s.error || s.error_type) return s.error_type === "request_cancelled" ? "cancelled" : "failed";
  return "done";
}

export class JobView {
  /**
   * @param api       the Api
   * @param onInvalid called with fal's 422 items when the finished request failed validation
   * @param onDone    called after the request ended (any outcome)
   * @param isLatest  (attempt) => whether no Generate press came after the one that started a job; only
   *                  then does the job speak in the status line and fields (its panel is always updated)
   */
  constructor(api, { onInvalid, onDone, isLatest }) {
    this.api = api;
    this.onInvalid = onInvalid;
    this.onDone = onDone;
    this.isLatest = isLatest;
    this.current = null;
    $("cancel").addEventListener("click", () => this.cancel());
    $("copy-job-id").addEventListener("click", () => copyText($("job-id").textContent, $("copy-job-id")));
    $("copy-video-url").addEventListener("click", () => copyText($("video-url").textContent, $("copy-video-url")));
  }

  /** Follow a freshly submitted request (the submit answer); `attempt` is the Generate press it came from. */
  start(submitted, attempt) {
    this.stop();
    const job = { id: submitted.request_id, attempt, abort: new AbortController(), finished: false };
    this.current = job;
    $("job").hidden = false;
    $("job-id").textContent = job.id;
    $("output-title").textContent = "Previous result"; // until this request's video replaces it
    $("logs").textContent = "";
    $("logs-box").open = true;
    $("cancel").hidden = false;
    $("cancel").disabled = false;
    this.render(job, submitted);
    this.follow(job);
  }

  /** The status line, if this job still owns it (no newer Generate press). */
  say(job, message, kind) {
    if (this.isLatest(job.attempt)) setStatus(message, kind, "job");
  }

  stop() {
    if (this.current) this.current.abort.abort();
    this.current = null;
  }

  async follow(job) {
    const handle = (s) => this.onStatus(job, s);
    try {
      await this.api.streamStatus(job.id, handle, job.abort.signal);
    } catch (err) {
      if (err.name === "AbortError") return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        this.say(job, `Cannot follow the request: ${err.message}`, "error");
        return;
      }
      // Fall through to polling: proxies sometimes break long streams.
    }
    // The stream ended without COMPLETED (or broke): poll the status until it is.
    while (!job.finished && !job.abort.signal.aborted) {
      try {
        const s = await this.api.status(job.id);
        $("logs").textContent = ""; // a polled status carries every log line: redraw them
        this.onStatus(job, s);
      } catch (err) {
        if (err.name === "AbortError") return;
        this.say(job, `Lost contact with the server (${err.message}); retrying…`, "error");
      }
      if (!job.finished) await sleep(POLL_MS);
    }
  }

  onStatus(job, s) {
    if (job !== this.current || job.finished) return;
    this.render(job, s);
    if (s.status === "COMPLETED") {
      job.finished = true;
      this.finish(job, s);
    }
  }

  render(job, s) {
    const badge = $("job-status");
    const label = statusLabel(s);
    badge.textContent = label;
    badge.className = `badge ${label}`;
    const qp = $("queue-position");
    if (s.status === "IN_QUEUE") {
      const n = s.queue_position ?? 0;
      qp.textContent = n === 0 ? "Next in queue" : `Queue position: ${n} ahead`;
      qp.dataset.position = String(n);
    } else {
      qp.textContent = "";
      delete qp.dataset.position;
    }
    const bar = $("progress");
    if (s.status === "IN_PROGRESS" && s.progress && s.progress.total) {
      bar.max = s.progress.total;
      bar.value = s.progress.step;
      bar.title = `${s.progress.step}/${s.progress.total} frames`;
    } else if (s.status === "COMPLETED") {
      bar.max = 1;
      bar.value = label === "done" ? 1 : 0;
    } else {
      bar.removeAttribute("value"); // indeterminate while queued or starting
    }
    this.appendLogs(s.logs);
  }

  appendLogs(logs) {
    if (!Array.isArray(logs) || !logs.length) return;
    const box = $("logs");
    for (const log of logs) {
      const level = String(log.level || "INFO").toUpperCase();
      box.append(el("span", { className: `log ${level.toLowerCase()}`,
        textContent: `${formatTime(log.timestamp)}  ${log.message}\n` }));
    }
    box.scrollTop = box.scrollHeight;
  }

  async finish(job, final) {
    $("cancel").hidden = true;
    // Say at once how it ended; the result body (fetched next) adds the details.
    const label = statusLabel(final);
    if (label === "cancelled") this.say(job, "The request was cancelled.", "info");
    else if (label === "failed") this.say(job, "The request failed; fetching the details…", "error");
    else this.say(job, "Done; loading the video…", "ok");
    try {
      const res = await this.api.result(job.id);
      if (res.ok) {
        $("logs-box").open = false; // room for the video
        if (this.isLatest(job.attempt) || $("output").hidden) this.showVideo(res.body, job.id);
        this.say(job, "Done. The video plays above.", "ok");
      } else if (this.isLatest(job.attempt)) {
        const items = res.body && Array.isArray(res.body.detail) ? res.body.detail : null;
        if (res.status === 422 && items) {
          this.onInvalid(items);
        } else if (res.body?.error_type === "request_cancelled") {
          this.say(job, "The request was cancelled.", "info");
        } else {
          this.say(job, `The request failed: ${errorSentences(res.body?.detail ?? `HTTP ${res.status}`)}`, "error");
        }
      }
    } catch (err) {
      this.say(job, `Could not fetch the result: ${err.message}`, "error");
    }
    this.onDone();
  }

  showVideo(output, id) {
    const url = output?.video?.url;
    if (!url) {
      setStatus("The result has no video URL.", "error", "job");
      return;
    }
    const video = $("video");
    video.muted = true;
    video.src = url;
    video.play().catch(() => {}); // autoplay may be refused; the controls remain
    const link = $("download");
    link.href = url;
    link.download = output.video.file_name || `kinema-${id || "video"}.mp4`;
    $("video-url").textContent = url;
    $("output-info").textContent = output.video.file_size
      ? `${(output.video.file_size / 1e6).toFixed(2)} MB` : "";
    $("output").dataset.requestId = id || "";
    $("output-title").textContent = "Result";
    $("output").hidden = false;
    // The result card leads the right-hand column; bring it into view if the page was scrolled away.
    const box = $("output").getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) $("output").scrollIntoView({ block: "nearest" });
  }

  async cancel() {
    const job = this.current;
    if (!job) return;
    $("cancel").disabled = true;
    try {
      const res = await this.api.cancel(job.id);
      // The stream may already have reported the end: then that message stands.
      if (this.current === job && !job.finished) {
        this.say(job, res.status === 202 ? "Cancelling…" : "The request had already finished.", "info");
      }
    } catch (err) {
      $("cancel").disabled = false;
      this.say(job, `Cancel failed: ${err.message}`, "error");
    }
  }
}

/** The key's requests, newest first, with a thumbnail of the input image and the video link. */
export async function refreshHistory(api, { onPlay, onReuse, currentId } = {}) {
  const list = $("history");
  const empty = $("history-empty");
  if (!api.key) {
    list.textContent = "";
    empty.hidden = false;
    empty.textContent = "Enter your API key to see your requests.";
    return;
  }
  let data;
  try {
    data = await api.listRequests();
  } catch (err) {
    empty.hidden = false;
    empty.textContent = `Could not load the history: ${err.message}`;
    return;
  }
  const items = data?.requests || [];
  list.textContent = "";
  empty.hidden = items.length > 0;
  empty.textContent = "No requests yet.";
  for (const r of items) {
    const label = statusLabel(r);
    const input = r.input || {};
    const video = r.result?.video?.url;
    const thumb = input.image_url
      ? el("img", { className: "thumb", src: input.image_url, alt: "", loading: "lazy" })
      : el("span", { className: "thumb" });
    const actions = el("span", { className: "actions" });
    if (video) {
      const play = el("button", { type: "button", className: "ghost small", textContent: "Play" });
      play.addEventListener("click", () => onPlay?.(r));
      actions.append(play, el("a", { href: video, className: "button ghost small", textContent: "Video",
        target: "_blank", rel: "noopener" }),
      copyButton(video, "Copy the video URL", "history-copy-url"));
      actions.lastChild.textContent = "Copy URL";
    }
    if (input.image_url) {
      const reuse = el("button", { type: "button", className: "ghost small", textContent: "Reuse these inputs",
        title: "Put this request's image, brushes and settings back in the form", dataset: { testid: "history-reuse" } });
      reuse.addEventListener("click", () => onReuse?.(r));
      actions.append(reuse);
    }
    const meta = [formatDate(r.created_at), input.duration ? `${input.duration} s` : "",
      input.dynamic_masks?.length ? `${input.dynamic_masks.length} dynamic` : "",
      input.static_mask_url ? "static" : "", input.tail_image_url ? "tail" : ""].filter(Boolean).join(" · ");
    const text = el("div", { className: "h-text" },
      el("div", { className: "h-prompt", textContent: input.prompt || "(no prompt)", title: input.prompt || "" }),
      el("div", { className: "hint", textContent: meta }),
      el("div", { className: "h-id" }, el("code", { textContent: r.request_id, dataset: { testid: "history-id" } }),
        copyButton(r.request_id, "Copy the request id", "history-copy-id")),
      r.error ? el("div", { className: "h-error", dataset: { testid: "history-error" },
        textContent: errorSentences(r.error).slice(0, 600) }) : null);
    const li = el("li", { className: r.request_id === currentId ? "current" : "", dataset: { id: r.request_id } },
      thumb, text, el("span", { className: `badge ${label}`, textContent: label }), actions);
    list.append(li);
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
