// fal.storage.upload(): POST {rest}/storage/upload/initiate through the middleware, then a direct PUT to
// upload_url (no middleware, no Authorization); then a Blob inside run() input, which the client uploads itself.
import { readFileSync } from "node:fs";
import { EP, emit, fal } from "./kinema-fal.mjs";

const bytes = readFileSync(process.env.COMPAT_IMAGE);
const blob = new Blob([bytes], { type: "image/jpeg" });
const url = await fal.storage.upload(blob);
const fetched = await fetch(url);
const back = Buffer.from(await fetched.arrayBuffer());
const { data } = await fal.run(EP, { input: { prompt: "the astronaut waves slowly", image_url: blob } });
emit({ url, status: fetched.status, sameBytes: back.equals(bytes), data });
