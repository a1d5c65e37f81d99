// Tar archives built by hand, byte by byte, for the layer tests: hostile
// archives (names with `..`, links out of the tree, binary PAX values) are
// exactly what an attacker could send.

import { concat } from "../../lib/util/bytes.ts";
import { removeTree } from "../../lib/util/fs.ts";

/** One tar entry to build. */
export interface Entry {
  name: string;
  /** Tar typeflag: "0" file, "1" hardlink, "2" symlink, "3" char, "4" block, "5" dir, "6" fifo, "L" GNU long name. */
  type?: string;
  body?: string | Uint8Array;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string | Uint8Array>;
}

/** UTF-8 encoder for fixture text. */
export const enc = new TextEncoder();

function field(buf: Uint8Array, off: number, len: number, value: string | Uint8Array): void {
  const bytes = typeof value === "string" ? enc.encode(value) : value;
  buf.set(bytes.subarray(0, len), off);
}

function octal(n: number, len: number): string {
  return n.toString(8).padStart(len - 1, "0") + "\0";
}

/** A ustar header block for `e` with a body of `size` bytes. */
export function header(e: Entry, size: number): Uint8Array {
  const b = new Uint8Array(512);
  field(b, 0, 100, e.name);
  field(b, 100, 8, octal(e.mode ?? (e.type === "5" ? 0o755 : 0o644), 8));
  field(b, 108, 8, octal(e.uid ?? 0, 8));
  field(b, 116, 8, octal(e.gid ?? 0, 8));
  field(b, 124, 12, octal(size, 12));
  field(b, 136, 12, octal(e.mtime ?? 1_600_000_000, 12));
  field(b, 148, 8, "        ");
  field(b, 156, 1, e.type ?? "0");
  field(b, 157, 100, e.linkname ?? "");
  field(b, 257, 6, "ustar\0");
  field(b, 263, 2, "00");
  field(b, 329, 8, octal(e.devmajor ?? 0, 8));
  field(b, 337, 8, octal(e.devminor ?? 0, 8));
  let sum = 0;
  for (const x of b) sum += x;
  field(b, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

/** PAX records for `pax`. */
export function paxBody(pax: Record<string, string | Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [k, v] of Object.entries(pax)) {
    const value = typeof v === "string" ? enc.encode(v) : v;
    const rest = enc.encode(` ${k}=`).length + value.length + 1;
    let len = rest + 1;
    while (String(len).length + rest !== len) len = String(len).length + rest;
    const rec = new Uint8Array(len);
    rec.set(enc.encode(`${len} ${k}=`));
    rec.set(value, len - value.length - 1);
    rec[len - 1] = 0x0a;
    parts.push(rec);
  }
  return concat(parts);
}

/** The blocks of one entry: its PAX header when it has one, header, body, padding. */
export function block(e: Entry): Uint8Array[] {
  const body = typeof e.body === "string" ? enc.encode(e.body) : e.body ?? new Uint8Array();
  const out = [header(e, body.length), body, new Uint8Array((512 - body.length % 512) % 512)];
  if (e.pax) {
    const p = paxBody(e.pax);
    out.unshift(
      header({ name: "PaxHeader", type: "x" }, p.length),
      p,
      new Uint8Array((512 - p.length % 512) % 512),
    );
  }
  return out;
}

/** A tar archive of `entries`, ended by two zero blocks and padded to 10 KiB like GNU tar. */
export function tar(entries: Entry[]): Uint8Array {
  const body = concat([...entries.flatMap(block), new Uint8Array(1024)]);
  return concat([body, new Uint8Array((10240 - body.length % 10240) % 10240)]);
}

/** `bytes` as a stream of `chunk`-byte pieces. */
export function stream(bytes: Uint8Array, chunk = 777): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + chunk));
      off += chunk;
    },
  });
}

/** Runs `fn` in a new temporary directory, removed afterwards (read-only directories too). */
export async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "trun-layer-test-" });
  try {
    await fn(dir);
  } finally {
    removeTree(dir);
  }
}
