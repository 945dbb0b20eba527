// The API key field: kept in this browser, and only called good once the server has accepted it.

import { $ } from "./ui.js";

export class KeyField {
  /** `onAccepted` runs each time the server accepts the key (failed uploads are retried then). */
  constructor(api, { onAccepted }) {
    this.api = api;
    this.onAccepted = onAccepted;
    this.seq = 0;
    this.state = "";
  }

  init() {
    const input = $("api-key");
    input.value = this.api.key;
    input.addEventListener("input", () => {
      this.api.key = input.value.trim();
      this.seq++; // a check of the previous text no longer speaks for this one
      this.show("", this.api.key ? "not checked yet" : "");
    });
    input.addEventListener("change", () => this.check());
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.check();
    });
    $("key-toggle").addEventListener("click", () => {
      input.type = input.type === "password" ? "text" : "password";
      $("key-toggle").textContent = input.type === "password" ? "show" : "hide";
    });
    if (this.api.key) this.check();
    else this.show("", "");
  }

  /** kind: "" (neutral), "checking", "ok" or "bad". */
  show(kind, text, title = "") {
    this.state = kind;
    const s = $("key-state");
    s.textContent = text;
    s.title = title;
    s.className = `key-state ${kind}`;
    s.dataset.state = kind;
    $("key-hint").hidden = Boolean(this.api.key) && kind !== "bad";
  }

  /** Ask the server whether it takes the key (a one-item history request). */
  async check() {
    const key = this.api.key;
    const seq = ++this.seq;
    if (!key) {
      this.show("", "");
      return false;
    }
    this.show("checking", "checking…");
    try {
      await this.api.listRequests(1);
    } catch (err) {
      if (seq !== this.seq) return false;
      if (err.status === 401 || err.status === 403) this.rejected(err);
      else this.show("bad", "could not be checked", `The server could not be asked: ${err.message}`);
      return false;
    }
    if (seq !== this.seq) return false;
    this.show("ok", "accepted by the server");
    this.onAccepted();
    return true;
  }

  /** The server refused the key (401/403 on any call). */
  rejected(err) {
    this.show("bad", "rejected by the server", err?.message || "");
  }

  /** The key is missing: say so where it is typed. */
  missing() {
    this.show("bad", "enter your API key first");
    $("api-key").focus();
  }
}
