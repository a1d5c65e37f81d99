/**
 * Back-pressure helpers for node streams (`node:zlib`, `tar-stream`) fed
 * from async iterables: waiting for 'drain', skipping a body nobody
 * reads, and running chunks through a transform.
 */

import type { Transform } from "node:stream";

/** The part of a node writable stream that {@link drained} listens on. */
export interface DrainableStream {
  /** Adds a one-shot listener. */
  once(event: string, fn: (...args: unknown[]) => void): unknown;
  /** Removes a listener. */
  off(event: string, fn: (...args: unknown[]) => void): unknown;
}

/** Resolves on 'drain'; rejects if the stream fails or closes first. */
export function drained(stream: DrainableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      stream.off("drain", ok);
      stream.off("error", bad);
      stream.off("close", closed);
      if (err) reject(err);
      else resolve();
    };
    const ok = () => done();
    const bad = (err: unknown) => done(err ?? new Error("stream failed"));
    const closed = () => done(new Error("stream closed"));
    stream.once("drain", ok);
    stream.once("error", bad);
    stream.once("close", closed);
  });
}

/** Reads `body` to its end and throws the bytes away (a tar entry nobody wants). */
export async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  const chunks = body[Symbol.asyncIterator]();
  while (!(await chunks.next()).done) { /* skip */ }
}

/** A node transform (zlib) fed from `chunks`, as an async iterable of its output. */
export async function* throughTransform(
  chunks: AsyncIterable<Uint8Array>,
  t: Transform,
): AsyncGenerator<Uint8Array> {
  const feed = (async () => {
    try {
      for await (const c of chunks) {
        if (!t.write(c)) await drained(t);
      }
      t.end();
    } catch (err) {
      t.destroy(err as Error);
    }
  })();
  try {
    for await (const out of t) yield out as Uint8Array;
  } finally {
    t.destroy();
    await feed;
  }
}
