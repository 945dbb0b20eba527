// fal.storage.upload(): POST {rest}/storage/upload/initiate through the middleware, then a direct PUT to
// upload_url (no middleware, no Authorization). Once with a named File, once with a bare Blob placed in
// run() input, which the client uploads by itself before it sends the request.
import { readFileSync } from "node:fs";
import { EP, emit, fal } from "./kinema-fal.mjs";

const bytes = readFileSync(process.env.COMPAT_IMAGE);

async function download(url) {
  const response = await fetch(url);
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, contentType: response.headers.get("content-type"), sameBytes: body.equals(bytes) };
}

const named = await fal.storage.upload(new File([bytes], "astronaut photo.jpg", { type: "image/jpeg" }));
const namedDownload = await download(named);

const blob = new Blob([bytes], { type: "image/jpeg" });
const { data, requestId } = await fal.run(EP, { input: { prompt: "the astronaut waves slowly", image_url: blob } });
emit({ named, namedDownload, data, requestId });
