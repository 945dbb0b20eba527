// fal.run(): the sync endpoint, answered with {data, requestId}.
import { EP, emit, fal, input } from "./kinema-fal.mjs";

const { data, requestId } = await fal.run(EP, { input: input() });
emit({ data, requestId });
