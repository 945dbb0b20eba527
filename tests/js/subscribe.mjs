// fal.subscribe() with logs and onQueueUpdate, in polling (default) or streaming mode (argv[2]).
// A blocker keeps the single worker busy so our request is seen IN_QUEUE; it is cancelled on the
// first IN_QUEUE update so ours can run.
import { EP, emit, fal, input, waitFor } from "./kinema-fal.mjs";

const mode = process.argv[2] ?? "polling";
const blocker = await fal.queue.submit(EP, { input: input() });
await waitFor(blocker.request_id, "IN_PROGRESS");

const updates = [];
let cancelled = null;
let enqueued = null;
const options = {
  input: input(),
  logs: true,
  onEnqueue: (id) => { enqueued = id; },
  onQueueUpdate: (update) => {
    updates.push({
      status: update.status,
      queue_position: update.queue_position,
      logs: Array.isArray(update.logs) ? update.logs.map((l) => l.message) : update.logs,
      log_keys: Array.isArray(update.logs) && update.logs.length ? Object.keys(update.logs[0]).sort() : null,
    });
    if (update.status === "IN_QUEUE" && cancelled === null) {
      cancelled = fal.queue.cancel(EP, { requestId: blocker.request_id });
    }
  },
};
if (mode === "streaming") options.mode = "streaming";
else options.pollInterval = 100;

const result = await fal.subscribe(EP, options);
await cancelled;
const full = await fal.queue.status(EP, { requestId: result.requestId, logs: true });
const blockerStatus = await fal.queue.status(EP, { requestId: blocker.request_id });
emit({ mode, enqueued, updates, result, fullLogs: full.logs.map((l) => l.message), blockerStatus });
