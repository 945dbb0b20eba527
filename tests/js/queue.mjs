// fal.queue.submit / status / result / cancel on a request that completes, and status of an unknown id.
import { EP, describeError, emit, fal, input, waitFor } from "./kinema-fal.mjs";

const submitted = await fal.queue.submit(EP, { input: input() });
const first = await fal.queue.status(EP, { requestId: submitted.request_id, logs: true });
await waitFor(submitted.request_id, "COMPLETED");
const final = await fal.queue.status(EP, { requestId: submitted.request_id, logs: true });
const result = await fal.queue.result(EP, { requestId: submitted.request_id });

let cancelDone;
try {
  await fal.queue.cancel(EP, { requestId: submitted.request_id });
  cancelDone = { resolved: true };
} catch (err) {
  cancelDone = describeError(err);
}
let unknown;
try {
  await fal.queue.status(EP, { requestId: "0".repeat(32) });
  unknown = { resolved: true };
} catch (err) {
  unknown = describeError(err);
}
emit({ submitted, first, final, result, cancelDone, unknown });
