// The "API" panel: the exact request for the current inputs, as curl, Python (fal_client) and JS (@fal-ai/client).

import { ENDPOINT_ID, OWNER_ALIAS } from "./api.js";

/** curl: queue submit with the JSON body, wait for COMPLETED, fetch the result (runs as pasted, in bash). */
export function curlSnippet(origin, input) {
  const body = prettyJson(input);
  const auth = `-H "Authorization: Key $FAL_KEY"`;
  const requests = `${origin}/${OWNER_ALIAS}/requests/$REQUEST_ID`;
  return [
    `# export FAL_KEY="<your kinema key>"`,
    `: "\${FAL_KEY:?set FAL_KEY to your kinema key}"`,
    ``,
    `# Submit to the queue; the answer carries request_id, status_url and response_url.`,
    `SUBMITTED=$(curl -sS -X POST "${origin}/${ENDPOINT_ID}" \\`,
    `  ${auth} \\`,
    `  -H "Content-Type: application/json" \\`,
    `  --data-binary @- <<'JSON'`,
    body,
    `JSON`,
    `)`,
    `echo "$SUBMITTED"`,
    `REQUEST_ID=$(printf '%s' "$SUBMITTED" | sed -n 's/.*"request_id": *"\\([^"]*\\)".*/\\1/p')`,
    ``,
    `# Wait while it is queued or running (add ?logs=1 for the logs), then fetch the result.`,
    `while STATUS=$(curl -sS ${auth} "${requests}/status"); do`,
    `  case "$STATUS" in *IN_QUEUE*|*IN_PROGRESS*) sleep 1 ;; *) break ;; esac`,
    `done`,
    `curl -sS ${auth} "${requests}"`,
    ``,
    `# Or wait for the output in one call (sync run):`,
    `# curl -sS -X POST "${origin}/run/${ENDPOINT_ID}" ${auth} \\`,
    `#   -H "Content-Type: application/json" --data-binary @request.json`,
  ].join("\n");
}

/** Python: fal_client pointed at this server through FAL_QUEUE_RUN_HOST / FAL_RUN_HOST. */
export function pythonSnippet(origin, input) {
  const url = new URL(origin);
  const lines = [
    `# pip install fal-client   (FAL_KEY must be set: export FAL_KEY="<your kinema key>")`,
    `import os`,
    ``,
    `# fal_client reads these when it is imported: send its requests to this kinema server.`,
    `os.environ["FAL_QUEUE_RUN_HOST"] = "${url.host}"`,
    `os.environ["FAL_RUN_HOST"] = "${url.host}/run"`,
  ];
  if (url.protocol !== "https:") {
    lines.push(
      `# fal_client always connects with https://: serve kinema with --tls-cert/--tls-key`,
      `# (and set SSL_CERT_FILE to your CA for a self-signed certificate), or use curl / JS.`,
    );
  }
  lines.push(
    ``,
    `import fal_client  # noqa: E402`,
    ``,
    ``,
    `printed = 0  # each status carries every log line so far: print the new ones`,
    ``,
    ``,
    `def on_queue_update(update):`,
    `    global printed`,
    `    if isinstance(update, fal_client.InProgress) and update.logs:`,
    `        for log in update.logs[printed:]:`,
    `            print(log["message"])`,
    `        printed = len(update.logs)`,
    ``,
    ``,
    `result = fal_client.subscribe(`,
    `    "${ENDPOINT_ID}",`,
    `    arguments=${indent(pyLiteral(input), 4).trimStart()},`,
    `    with_logs=True,`,
    `    on_queue_update=on_queue_update,`,
    `)`,
    `print(result["video"]["url"])`,
  );
  return lines.join("\n");
}

/** JS: @fal-ai/client with a requestMiddleware that rewrites fal's hosts to this server. */
export function jsSnippet(origin, input) {
  return [
    `// npm install @fal-ai/client   (FAL_KEY must be set: export FAL_KEY="<your kinema key>")`,
    `import { fal } from "@fal-ai/client";`,
    ``,
    `const KINEMA = ${JSON.stringify(origin)};`,
    ``,
    `fal.config({`,
    `  credentials: process.env.FAL_KEY,`,
    `  // The client has no base-URL option: rewrite queue.fal.run/... and fal.run/... to kinema.`,
    `  requestMiddleware: async (request) => {`,
    `    const url = new URL(request.url);`,
    `    const prefix = url.hostname === "fal.run" ? "/run" : "";`,
    `    return { ...request, url: KINEMA + prefix + url.pathname + url.search };`,
    `  },`,
    `});`,
    ``,
    `let printed = 0; // each polled status carries every log line so far: print the new ones`,
    `const result = await fal.subscribe("${ENDPOINT_ID}", {`,
    `  input: ${indent(prettyJson(input), 2).trimStart()},`,
    `  logs: true,`,
    `  onQueueUpdate: (update) => {`,
    `    if (update.status !== "IN_PROGRESS" || !update.logs) return;`,
    `    update.logs.slice(printed).forEach((log) => console.log(log.message));`,
    `    printed = update.logs.length;`,
    `  },`,
    `});`,
    `console.log(result.data.video.url, result.requestId);`,
  ].join("\n");
}

/** A JSON value as a Python literal (dicts, lists, str, numbers, True/False/None). */
export function pyLiteral(value, level = 0) {
  const pad = "    ".repeat(level + 1);
  const end = "    ".repeat(level);
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number" || typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return `[\n${value.map((v) => pad + pyLiteral(v, level + 1)).join(",\n")},\n${end}]`;
  }
  const keys = Object.keys(value);
  if (!keys.length) return "{}";
  if (keys.length <= 2 && keys.every((k) => typeof value[k] === "number")) {
    return `{${keys.map((k) => `${JSON.stringify(k)}: ${value[k]}`).join(", ")}}`; // a trajectory point
  }
  return `{\n${keys.map((k) => `${pad}${JSON.stringify(k)}: ${pyLiteral(value[k], level + 1)}`).join(",\n")},\n${end}}`;
}

/** JSON with two-space indent, trajectory points kept on one line each. */
export function prettyJson(value) {
  return JSON.stringify(value, null, 2).replace(/\{\n\s*"x": (-?\d+),\n\s*"y": (-?\d+)\n\s*\}/g, '{"x": $1, "y": $2}');
}

function indent(text, spaces) {
  const pad = " ".repeat(spaces);
  return text.split("\n").map((l, i) => (i === 0 ? l : pad + l)).join("\n");
}
