// The input image and the tail image: decoded in the page, checked as the server would, uploaded (and
// uploaded again once a failed upload can succeed: after the key is fixed).

import { ApiError } from "./api.js";
import { $, clearFieldError, showFieldError } from "./ui.js";
import { imageSizeProblem } from "./validation.js";

/** One chosen file: {file, img, width, height, problem, url, pending, failed}. */
export class InputFile {
  constructor(file, img, field) {
    this.file = file;
    this.img = img;
    this.field = field; // "image_url" | "tail_image_url": where its errors are shown
    this.width = img.naturalWidth;
    this.height = img.naturalHeight;
    this.problem = imageSizeProblem(this.width, this.height); // the server's words, or ""
    this.url = null;
    this.pending = null;
    this.failed = null;
  }

  get objectUrl() {
    return this.img.src;
  }
}

/** Decode a picked or dropped file; returns an InputFile, or shows why not and returns null. */
export async function readImage(file, field) {
  if (!/^image\/(png|jpeg)$/.test(file.type)) {
    showFieldError(field, `“${file.name}” is not a JPEG or PNG image.`);
    return null;
  }
  const img = new Image();
  img.src = URL.createObjectURL(file);
  try {
    await img.decode();
  } catch {
    URL.revokeObjectURL(img.src);
    showFieldError(field, `“${file.name}” could not be decoded as an image.`);
    return null;
  }
  return new InputFile(file, img, field);
}

export class Uploader {
  /**
   * @param api        the Api
   * @param keyField   the KeyField (told when the server rejects the key)
   * @param isCurrent  (entry) => whether `entry` is still the page's image or tail (errors of others are dropped)
   * @param onUploaded (entry) => called once an entry has its URL
   */
  constructor(api, keyField, { isCurrent, onUploaded }) {
    this.api = api;
    this.keyField = keyField;
    this.isCurrent = isCurrent;
    this.onUploaded = onUploaded;
  }

  /** Upload a blob; a 401/403 marks the key as rejected. Resolves to the file's URL. */
  async blob(blob, name, type) {
    try {
      const file = await this.api.upload(blob, name, type);
      return file.url;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) this.keyField.rejected(err);
      throw err;
    }
  }

  /** The entry's URL: uploaded already, being uploaded, or uploaded now (again, after a failure). */
  ensure(entry) {
    if (entry.url) return Promise.resolve(entry.url);
    if (entry.pending) return entry.pending;
    entry.failed = null;
    entry.pending = this.blob(entry.file, entry.file.name, entry.file.type).then(
      (url) => {
        entry.url = url;
        entry.pending = null;
        if (this.isCurrent(entry)) {
          clearFieldError(entry.field); // an earlier "upload failed" is over
          this.onUploaded(entry);
        }
        return url;
      },
      (err) => {
        entry.pending = null;
        entry.failed = err;
        if (this.isCurrent(entry)) {
          const why = err instanceof ApiError && (err.status === 401 || err.status === 403)
            ? "the server rejected the API key. Fix the key above: the upload is retried then."
            : err.message;
          clearFieldError(entry.field);
          showFieldError(entry.field, `Upload failed: ${why}`);
          this.onUploaded(entry);
        }
        throw err;
      },
    );
    entry.pending.catch(() => {}); // reported above; callers that wait see the rejection themselves
    return entry.pending;
  }

  /** Retry entries whose upload failed (the key was just accepted). */
  retry(entries) {
    for (const e of entries) if (e && e.failed && !e.problem) this.ensure(e);
  }
}

/** The line under the image: name, size, upload state. */
export function imageInfo(entry) {
  if (!entry) return;
  const up = entry.problem ? "not uploaded" : entry.url ? "uploaded" : entry.failed ? "upload failed" : "uploading…";
  $("image-info").textContent = `${entry.file.name} · ${entry.width}×${entry.height} px · ${up}`;
}
