/**
 * The worker side of lib/oci/layer_decode.ts: reads a layer blob file,
 * hashes it, decompresses it (gzip or zstd, told by its magic bytes) and
 * hashes the tar, sending the tar to the thread that creates the files in
 * 1 MiB messages. In Deno, node:zlib inflates synchronously on the calling
 * thread, so this worker is what lets decompression overlap file creation.
 *
 * Protocol: the parent posts one {@link DecodeRequest}, then one `credit`
 * per message it has consumed; the worker never has more than
 * {@link DECODE_CREDITS} messages in flight. It answers with `data`
 * messages, then one `end` or one `error`.
 *
 * A request with `follow` reads a file that is still being downloaded: at
 * its end the worker waits for more until it has `follow` bytes, and the
 * parent posts `complete` once the writer is done (after which a short file
 * is an error). This lets a layer unpack while it downloads.
 */
/// <reference lib="deno.worker" />

import { createHash } from "node:crypto";
import { createGunzip, createZstdDecompress } from "node:zlib";
import type { Transform } from "node:stream";
import { detectCompression } from "./layer_tar.ts";

/** What the parent asks for. */
export interface DecodeRequest {
  /** The blob file. */
  path: string;
  /** The blob digest's algorithm (`sha256`, `sha512`). */
  algorithm: string;
  /** The blob's size, when the file is still being written: read until it has this many bytes. */
  follow?: number;
  /** Where a followed file is moved once complete (it may be gone from `path` before it is opened). */
  finalPath?: string;
}

/** What the worker sends back. */
export type DecodeMessage =
  | { type: "data"; bytes: Uint8Array }
  | { type: "end"; blobHex: string; diffId: string; tarSize: number }
  | { type: "error"; message: string; code?: string };

/** Messages the worker may have in flight before it waits for a credit. */
export const DECODE_CREDITS = 8;

const MESSAGE_BYTES = 1024 * 1024;
// Enough of the blob's start to tell gzip and zstd apart from a plain tar.
const MAGIC_BYTES = 4;
const READ_BYTES = 1024 * 1024;

let credits = DECODE_CREDITS;
let wake: (() => void) | undefined;
// Set when the parent says the writer of a followed file is done.
let writerDone = false;

// How long a reader at the end of a followed file waits before looking again.
const FOLLOW_POLL_MS = 3;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// Opens the blob file. A followed one may not exist until its download
// starts, and may already be complete and moved to its final place.
async function openBlob(req: DecodeRequest): Promise<Deno.FsFile> {
  for (;;) {
    const finished = writerDone;
    for (const path of [req.path, ...(req.finalPath !== undefined ? [req.finalPath] : [])]) {
      try {
        return await Deno.open(path, { read: true });
      } catch (err) {
        if (req.follow === undefined || !(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    if (finished) throw new Deno.errors.NotFound(`the blob file "${req.path}" is gone`);
    await sleep(FOLLOW_POLL_MS);
  }
}

// The next bytes of the blob, or null at its end. A followed file is read up
// to its announced size, waiting at the end of what is written so far.
async function readBlob(
  file: Deno.FsFile,
  buf: Uint8Array<ArrayBuffer>,
  req: DecodeRequest,
  done: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  if (req.follow === undefined) {
    const n = await file.read(buf);
    return n === null ? null : buf.slice(0, n);
  }
  const want = Math.min(buf.length, req.follow - done);
  if (want === 0) return null;
  for (;;) {
    // Read after looking at the flag: bytes written before `complete` was
    // posted are then always seen.
    const finished = writerDone;
    const n = await file.read(buf.subarray(0, want));
    if (n !== null && n > 0) return buf.slice(0, n);
    if (finished) {
      throw new Error(`the download of "${req.path}" ended after ${done} of ${req.follow} bytes`);
    }
    await sleep(FOLLOW_POLL_MS);
  }
}

// Hands `bytes` (and its buffer, which the caller must not touch again) over.
async function send(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  while (credits === 0) await new Promise<void>((r) => wake = r);
  credits--;
  self.postMessage({ type: "data", bytes } satisfies DecodeMessage, [bytes.buffer]);
}

async function decode(req: DecodeRequest): Promise<void> {
  const blobHash = createHash(req.algorithm);
  const tarHash = createHash("sha256");
  let tarSize = 0;
  // Output is gathered into 1 MiB messages: fewer, larger messages cost less.
  let pending = new Uint8Array(MESSAGE_BYTES);
  let filled = 0;
  const output = async (chunk: Uint8Array) => {
    tarHash.update(chunk);
    tarSize += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, MESSAGE_BYTES - filled);
      pending.set(chunk.subarray(off, off + n), filled);
      filled += n;
      off += n;
      if (filled === MESSAGE_BYTES) {
        const full = pending;
        pending = new Uint8Array(MESSAGE_BYTES);
        filled = 0;
        await send(full);
      }
    }
  };

  using file = await openBlob(req);
  const buf = new Uint8Array(READ_BYTES);
  let blobSize = 0;
  let decompressor: Transform | undefined;
  let compressionKnown = false;
  let failure: unknown;
  let draining: Promise<void> = Promise.resolve();
  let head: Uint8Array | undefined;
  for (;;) {
    let chunk = await readBlob(file, buf, req, blobSize);
    if (chunk === null) {
      if (head === undefined) break;
      // A blob shorter than a magic number: decide on what there is.
      chunk = new Uint8Array(0);
    } else {
      blobSize += chunk.length;
      blobHash.update(chunk);
    }
    if (head !== undefined) {
      const joined = new Uint8Array(head.length + chunk.length);
      joined.set(head);
      joined.set(chunk, head.length);
      chunk = joined;
      head = undefined;
    }
    // A followed file can give a first read shorter than any magic number.
    if (!compressionKnown && chunk.length < MAGIC_BYTES && blobSize < (req.follow ?? 0)) {
      head = chunk;
      continue;
    }
    if (!compressionKnown) {
      compressionKnown = true;
      const compression = detectCompression(chunk);
      if (compression !== "none") {
        const d = decompressor = compression === "gzip"
          ? createGunzip({ chunkSize: 256 * 1024 })
          : createZstdDecompress({ chunkSize: 256 * 1024 });
        d.on("error", (err) => failure ??= err);
        draining = (async () => {
          // Not destroyed when the loop ends: node can see the readable side
          // end a moment before the writable side finishes, and destroying
          // it then would raise an AbortError after all the data is out.
          const outs = d.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
          for await (const out of outs) await output(out);
        })().catch((err) => {
          failure ??= err;
        });
      }
    }
    if (failure !== undefined) throw failure;
    if (decompressor === undefined) await output(chunk);
    else if (!decompressor.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          decompressor!.off("drain", done);
          decompressor!.off("close", done);
          resolve();
        };
        decompressor!.once("drain", done);
        decompressor!.once("close", done);
      });
    }
  }
  decompressor?.end();
  await draining;
  if (failure !== undefined) throw failure;
  if (filled > 0) await send(pending.slice(0, filled));
  self.postMessage(
    {
      type: "end",
      blobHex: blobHash.digest("hex"),
      diffId: `sha256:${tarHash.digest("hex")}`,
      tarSize,
    } satisfies DecodeMessage,
  );
}

self.onmessage = (e: MessageEvent<DecodeRequest | "credit" | "complete">) => {
  if (e.data === "complete") {
    writerDone = true;
    return;
  }
  if (e.data === "credit") {
    credits++;
    const w = wake;
    wake = undefined;
    w?.();
    return;
  }
  decode(e.data).catch((err) => {
    const code = (err as { code?: unknown }).code;
    self.postMessage(
      {
        type: "error",
        message: err instanceof Error ? err.message : String(err),
        ...(typeof code === "string" ? { code } : {}),
      } satisfies DecodeMessage,
    );
  });
};
