// The kinema / fal queue API as the playground uses it: key storage, uploads, submit, status stream.

export const ENDPOINT_ID = "fal-ai/kling-video/v1/standard/image-to-video";
export const OWNER_ALIAS = "fal-ai/kling-video";
const KEY_STORAGE = "kinema.apiKey";

/** An HTTP error with the parsed JSON body (fal's `{"detail": ...}`) when there is one. */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    super(describe(status, body, fallback));
    this.status = status;
    this.body = body;
  }

  /** fal's 422 list `[{loc, msg, type}]`, or null when the body is not one. */
  get validationItems() {
    const d = this.body && this.body.detail;
    return Array.isArray(d) ? d : null;
  }
}

function describe(status, body, fallback) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  if (status === 0) return fallback || "the server cannot be reached";
  return fallback || `HTTP ${status}`;
}

export class Api {
  constructor(origin = window.location.origin) {
    this.origin = origin;
  }

  get key() {
    return window.localStorage.getItem(KEY_STORAGE) || "";
  }

  set key(value) {
    if (value) window.localStorage.setItem(KEY_STORAGE, value);
    else window.localStorage.removeItem(KEY_STORAGE);
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.key) h.Authorization = `Key ${this.key}`;
    return h;
  }

  /** fetch with the key; throws ApiError on a non-2xx answer. Returns the Response. */
  async fetch(method, path, { body, headers = {}, signal, okStatuses = [] } = {}) {
    let res;
    try {
      res = await fetch(this.origin + path, { method, body, headers: this.headers(headers), signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, null, `the server cannot be reached (${err.message})`);
    }
    if (!res.ok && !okStatuses.includes(res.status)) {
      throw new ApiError(res.status, await readJson(res), `HTTP ${res.status} ${res.statusText}`);
    }
    return res;
  }

  async json(method, path, options) {
    const res = await this.fetch(method, path, options);
    return readJson(res);
  }

  /** POST /files/upload with the raw bytes; returns fal's File JSON `{url, ...}`. */
  upload(blob, fileName, contentType) {
    const headers = { "Content-Type": contentType || blob.type || "application/octet-stream" };
    if (fileName) headers["X-Fal-File-Name"] = sanitizeName(fileName);
    return this.json("POST", "/files/upload", { body: blob, headers });
  }

  submit(input) {
    return this.json("POST", `/${ENDPOINT_ID}`, {
      body: JSON.stringify(input),
      headers: { "Content-Type": "application/json" },
    });
  }

  status(id) {
    return this.json("GET", `/${OWNER_ALIAS}/requests/${encodeURIComponent(id)}/status?logs=1`, {
      okStatuses: [202],
    });
  }

  /**
   * The SSE status stream, read with fetch (EventSource cannot send Authorization).
   * Calls onEvent(status) for each `data:` event; resolves when the server closes the stream.
   */
  async streamStatus(id, onEvent, signal) {
    const path = `/${OWNER_ALIAS}/requests/${encodeURIComponent(id)}/status/stream?logs=1`;
    const res = await this.fetch("GET", path, { headers: { Accept: "text/event-stream" }, signal });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) onEvent(JSON.parse(data)); // comment lines (": ping") carry no data
      }
    }
  }

  /** GET the result: `{ok, status, body}`; a failed request answers with its own error status. */
  async result(id) {
    const res = await this.fetch("GET", `/${OWNER_ALIAS}/requests/${encodeURIComponent(id)}`, {
      okStatuses: [400, 404, 422, 500, 502, 503, 504],
    });
    return { ok: res.ok, status: res.status, body: await readJson(res) };
  }

  async cancel(id) {
    const res = await this.fetch("PUT", `/${OWNER_ALIAS}/requests/${encodeURIComponent(id)}/cancel`, {
      okStatuses: [400, 404],
    });
    return { status: res.status, body: await readJson(res) };
  }

  listRequests(limit = 30) {
    return this.json("GET", `/requests?limit=${limit}`);
  }
}

async function readJson(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON (e.g. an HTML error page from a proxy): the caller falls back to the HTTP status line.
    return text.trimStart().startsWith("<") ? null : { detail: text.slice(0, 300) };
  }
}

function sanitizeName(name) {
  // Header values must be ISO-8859-1; keep the name readable and safe.
  return name.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120) || "upload";
}
