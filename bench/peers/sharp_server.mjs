// A minimal HTTP image service on sharp (libvips), the processor benchmark's peer.
//
//   node bench/peers/sharp_server.mjs PORT MODULES_DIR
//
// MODULES_DIR is the npm prefix sharp was installed into (bench/.cache/sharp).
//   GET  /healthz                              -> 200 {"status": "ok"}
//   POST /process?ops=<steps>&quality=1..100   body: image bytes -> baseline JPEG
// One step in Darkroom's pipeline syntax (sharp applies chained operations in an order
// of its own, not the order given, so a pipeline is refused): grayscale, blur:sigma=S,
// rotate:degrees=D (counter-clockwise, canvas grows, black fill), sobel_x (128 + g/8, per channel),
// resize:width=W, square_crop (centred). Errors: {"error": {"code", "message"}}.
//
// Concurrency: requests run side by side on libuv's thread pool (UV_THREADPOOL_SIZE,
// set by the caller), each on one libvips thread (SHARP_CONCURRENCY, default 1), as
// Darkroom runs one single-threaded job per slot. libvips' operation cache is off so
// a repeated request recomputes, as Darkroom does.

import { createServer } from "node:http";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const [port, modules] = process.argv.slice(2);
if (!port || !modules) {
  console.error("usage: node sharp_server.mjs PORT MODULES_DIR");
  process.exit(2);
}
const sharp = createRequire(join(resolve(modules), "package.json"))("sharp");
sharp.concurrency(Number(process.env.SHARP_CONCURRENCY ?? 1));
sharp.cache(false);

const MAX_BODY_BYTES = 50_000_000;

class BadRequest extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function parseSteps(ops) {
  return ops
    .split("|")
    .filter((step) => step)
    .map((step) => {
      const [name, args = ""] = step.split(":", 2);
      const params = {};
      for (const pair of args.split(",").filter((p) => p)) {
        const [key, value] = pair.split("=", 2);
        const number = Number(value);
        if (!Number.isFinite(number)) {
          throw new BadRequest(422, "invalid_parameter", `${name}: ${key} must be a number`);
        }
        params[key] = number;
      }
      return { name, params };
    });
}

async function apply(image, { name, params }) {
  switch (name) {
    case "grayscale":
      // One channel out, as Darkroom writes L: sharp otherwise keeps three equal ones.
      return image.grayscale().toColourspace("b-w");
    case "blur":
      return image.blur(params.sigma ?? 3);
    case "rotate":
      // Darkroom turns counter-clockwise for positive degrees, sharp clockwise.
      return image.rotate(-(params.degrees ?? 0), { background: "#000000" });
    case "sobel_x":
      return image.convolve({
        width: 3,
        height: 3,
        kernel: [-1, 0, 1, -2, 0, 2, -1, 0, 1],
        scale: 8,
        offset: 128,
      });
    case "resize":
      return image.resize({ width: params.width, height: params.height });
    case "square_crop": {
      const { width, height } = await image.metadata();
      const side = Math.min(width, height);
      return image.extract({
        left: Math.floor((width - side) / 2),
        top: Math.floor((height - side) / 2),
        width: side,
        height: side,
      });
    }
    default:
      throw new BadRequest(404, "unknown_operation", `unknown operation ${JSON.stringify(name)}`);
  }
}

async function process_(body, query) {
  const quality = Number(query.get("quality") ?? 80);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new BadRequest(422, "invalid_parameter", "quality must be an integer in 1..100");
  }
  const steps = parseSteps(query.get("ops") ?? "");
  if (steps.length > 1) {
    throw new BadRequest(400, "invalid_pipeline", "one step per request");
  }
  let image = sharp(body, { limitInputPixels: 50_000_000 });
  for (const step of steps) {
    image = await apply(image, step);
  }
  // Darkroom's output: baseline, not Huffman-optimised, 4:2:0, plain libjpeg-turbo.
  return image
    .jpeg({ quality, progressive: false, optimiseCoding: false, mozjpeg: false })
    .toBuffer();
}

function send(response, status, type, payload) {
  response.writeHead(status, { "Content-Type": type, "Content-Length": payload.length });
  response.end(payload);
}

function sendError(response, status, code, message) {
  send(response, status, "application/json", Buffer.from(JSON.stringify({ error: { code, message } })));
}

const server = createServer((request, response) => {
  const url = new URL(request.url, "http://localhost");
  if (request.method === "GET" && url.pathname === "/healthz") {
    send(response, 200, "application/json", Buffer.from('{"status": "ok"}'));
    return;
  }
  if (request.method !== "POST" || url.pathname !== "/process") {
    sendError(response, 404, "not_found", `no route ${request.method} ${url.pathname}`);
    return;
  }
  const chunks = [];
  let size = 0;
  request.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      sendError(response, 413, "too_large", `body over ${MAX_BODY_BYTES} bytes`);
      request.destroy();
      return;
    }
    chunks.push(chunk);
  });
  request.on("end", () => {
    if (response.writableEnded) return;
    process_(Buffer.concat(chunks), url.searchParams).then(
      (jpeg) => send(response, 200, "image/jpeg", jpeg),
      (error) => {
        if (error instanceof BadRequest) {
          sendError(response, error.status, error.code, error.message);
        } else {
          sendError(response, 415, "unreadable_image", String(error.message ?? error));
        }
      },
    );
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1");
