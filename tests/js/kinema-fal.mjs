// Points the official @fal-ai/client at a kinema server with nothing but fal.config():
// credentials plus a requestMiddleware that rewrites fal's hosts to KINEMA_URL.
import { readFileSync } from "node:fs";
import { fal } from "@fal-ai/client";

export const EP = "fal-ai/kling-video/v1/standard/image-to-video";
export const BASE = process.env.KINEMA_URL;
if (!BASE || !process.env.KINEMA_KEY) {
  throw new Error("set KINEMA_URL and KINEMA_KEY");
}

// Longest prefix first: queue.fal.run must not be caught by fal.run.
const REWRITES = [
  ["https://queue.fal.run/", `${BASE}/`],
  ["https://fal.run/", `${BASE}/run/`],
  ["https://rest.fal.ai/", `${BASE}/`],
];

/** Every request the client sent, as "METHOD url" after rewriting. */
export const sent = [];

export function rewrite(url) {
  for (const [from, to] of REWRITES) {
    if (url.startsWith(from)) return to + url.slice(from.length);
  }
  throw new Error(`refusing to send a request outside kinema: ${url}`);
}

fal.config({
  credentials: process.env.KINEMA_KEY,
  requestMiddleware: async (request) => {
    const url = rewrite(request.url);
    sent.push(`${request.method} ${url}`);
    return { ...request, url };
  },
});

export { fal };

/** The test photo as a data URI (what a user passes when not uploading). */
export function imageDataUri() {
  const bytes = readFileSync(process.env.COMPAT_IMAGE);
  return `data:image/jpeg;base64,${bytes.toString("base64")}`;
}

export function input(extra = {}) {
  return { prompt: "the astronaut waves slowly", image_url: imageDataUri(), duration: "5", ...extra };
}

/** An error as plain JSON: class name, HTTP status and body as the client exposes them. */
export function describeError(err) {
  return {
    name: err?.constructor?.name ?? typeof err,
    message: String(err?.message ?? err),
    status: err?.status ?? null,
    body: err?.body ?? null,
    requestId: err?.requestId ?? null,
    fieldErrors: typeof err?.getFieldErrors === "function" ? err.fieldErrors : null,
    promptErrors: typeof err?.getFieldErrors === "function" ? err.getFieldErrors("prompt") : null,
  };
}

export async function waitFor(requestId, wanted) {
  for (let i = 0; i < 600; i++) {
    const s = await fal.queue.status(EP, { requestId, logs: false });
    if (s.status === wanted || s.status === "COMPLETED") return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`request ${requestId} never reached ${wanted}`);
}

/** Print the scenario's outcome as one JSON line (the pytest driver reads the last line). */
export function emit(obj) {
  console.log(JSON.stringify({ ...obj, sent }));
}
