// fal.queue.cancel on a running request (slow engine): accepted, then COMPLETED with an error.
import { EP, describeError, emit, fal, input, waitFor } from "./kinema-fal.mjs";

const { request_id: requestId } = await fal.queue.submit(EP, { input: input() });
await waitFor(requestId, "IN_PROGRESS");
await fal.queue.cancel(EP, { requestId });
const after = await waitFor(requestId, "COMPLETED");
let result;
try {
  result = { resolved: await fal.queue.result(EP, { requestId }) };
} catch (err) {
  result = describeError(err);
}
emit({ requestId, after, result });
