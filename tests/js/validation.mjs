// 422s: one from submit (missing prompt) and one from the result (a 200x200 photo, refused by the worker);
// both must surface as ValidationError (an ApiError) with the pydantic-style detail.
import { readFileSync } from "node:fs";
import { ApiError } from "@fal-ai/client";
import { EP, describeError, emit, fal, imageDataUri, input } from "./kinema-fal.mjs";

async function attempt(options) {
  try {
    return { resolved: await fal.subscribe(EP, options) };
  } catch (err) {
    return { ...describeError(err), isApiError: err instanceof ApiError };
  }
}

const small = `data:image/jpeg;base64,${readFileSync(process.env.COMPAT_SMALL_IMAGE).toString("base64")}`;
const atSubmit = await attempt({ input: { image_url: imageDataUri() } });
const atResult = await attempt({ input: input({ image_url: small }), pollInterval: 100 });
emit({ atSubmit, atResult });
