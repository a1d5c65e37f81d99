/**
 * Content-addressed blobs: `blobs/<algorithm>/<hex>`, written crash-safely
 * (complete temporary file, fsync, rename, fsync of the directory) so a blob
 * under its final name is always whole. The file is the truth about whether
 * a blob exists; the `blobs` table only remembers sizes and when it came.
 *
 * Temporary names: `<hex>.partial` is the stable name a download writes
 * (so an interrupted one can be resumed); `.scratch-<pid>-<random>` holds
 * content whose digest is not known yet (archive import); `<hex>.tmp-<random>`
 * is a small write in progress. repair() tells leftovers from live ones.
 */

import type { Hash } from "node:crypto";
import { type StoreContext, transaction } from "./db.ts";
import { errorMessage } from "../util/errors.ts";
import { isNoSpace } from "../util/fs.ts";

/**
 * A streaming hash from node:crypto, loaded on first use: importing
 * node:crypto costs ~35 ms of startup, which `trun run` (open the store,
 * read an image's layers) must not pay. `process.getBuiltinModule` is the
 * synchronous way to load a built-in on demand.
 */
export function createHash(algorithm: string): Hash {
  const crypto = process.getBuiltinModule("node:crypto") as typeof import("node:crypto");
  return crypto.createHash(algorithm);
}

/** `algorithm:hex` digest of small in-memory content. */
export function digestOf(bytes: Uint8Array | string, algorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

const HEX: Readonly<Record<string, RegExp>> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** A digest split into its algorithm and hex parts. */
export interface ParsedDigest {
  /** `sha256` or `sha512`. */
  algorithm: string;
  /** The lowercase hex value. */
  hex: string;
}

/** Splits and checks `sha256:<64 hex>` (or sha512); throws a message naming the digest. */
export function parseDigest(digest: string): ParsedDigest {
  const colon = digest.indexOf(":");
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const re = HEX[algorithm];
  if (colon < 0 || re === undefined || !re.test(hex)) {
    throw new Error(
      `Invalid digest "${digest}": expected "sha256:" followed by 64 lowercase hex digits`,
    );
  }
  return { algorithm, hex };
}

/** Where the blob `digest` lives. */
export function blobPath(root: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${root}/blobs/${algorithm}/${hex}`;
}

/** The stable temporary name a download of `digest` writes to (`<hex>.partial`). */
export function blobTempPath(root: string, digest: string): string {
  return `${blobPath(root, digest)}.partial`;
}

/** The exclusive lock a writer of `digest`'s temporary file should hold (see withLock). */
export function blobLockName(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blob-${algorithm}-${hex}`;
}

/** The shared lease that keeps the garbage collector off blob `digest`. */
export function blobLeaseName(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `lease-blob-${algorithm}-${hex}`;
}

/** Makes the blob directories; cheap when they exist. */
export function ensureBlobDirs(root: string): void {
  Deno.mkdirSync(`${root}/blobs/sha256`, { recursive: true, mode: 0o755 });
  Deno.mkdirSync(`${root}/blobs/sha512`, { recursive: true, mode: 0o755 });
}

/**
 * True when the blob is in the store. A `true` answer also takes a lease,
 * so the blob stays until this store is closed even if a concurrent prune
 * runs before the caller records an image that uses it.
 */
export function hasBlob(ctx: StoreContext, digest: string): boolean {
  const path = blobPath(ctx.root, digest);
  if (!exists(path)) return false;
  ctx.lease(blobLeaseName(digest));
  // A collector may have removed it between the check and the lease.
  return exists(path);
}

/**
 * Moves a fully written temporary file into place as blob `digest`: checks
 * it exists (and its size when `expectedSize` is given), fsyncs it, renames
 * it, fsyncs the directory and records it. The caller has verified the
 * digest while writing. If the blob is already there, the rename replaces
 * it with identical content (readers keep their open file).
 */
export function commitBlob(
  ctx: StoreContext,
  digest: string,
  tempPath: string,
  expectedSize?: number,
): void {
  const path = blobPath(ctx.root, digest);
  let size: number;
  try {
    size = Deno.statSync(tempPath).size;
  } catch (err) {
    throw new Error(
      `Cannot commit blob ${digest}: "${tempPath}" is missing: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  if (expectedSize !== undefined && size !== expectedSize) {
    throw new Error(
      `Cannot commit blob ${digest}: "${tempPath}" has ${size} bytes, expected ${expectedSize}: download it again`,
    );
  }
  ctx.lease(blobLeaseName(digest));
  fsyncPath(tempPath);
  Deno.renameSync(tempPath, path);
  fsyncPath(dirOf(path));
  record(ctx, digest, size);
}

/** Stores small bytes (a config, a manifest) as blob `digest` after checking their hash. */
export function writeBlob(ctx: StoreContext, digest: string, bytes: Uint8Array): void {
  const { algorithm } = parseDigest(digest);
  const actual = digestOf(bytes, algorithm);
  if (actual !== digest) {
    throw new Error(`Content does not match its digest: expected ${digest}, got ${actual}`);
  }
  ctx.lease(blobLeaseName(digest));
  const path = blobPath(ctx.root, digest);
  if (exists(path)) return;
  const tmp = `${path}.tmp-${randomSuffix()}`;
  try {
    const f = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o644 });
    try {
      writeAll(f, bytes);
      f.syncSync();
    } finally {
      f.close();
    }
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // Nothing to clean, or repair() will.
    }
    throw noSpace(err, `storing blob ${digest}`, ctx.root);
  }
  fsyncPath(dirOf(path));
  record(ctx, digest, bytes.length);
}

/**
 * Streams content of unknown (or untrusted) digest into the store: hashes it
 * while writing to a scratch file, checks `expected` when given, then
 * commits it. Returns the digest and size.
 */
export async function importBlob(
  ctx: StoreContext,
  chunks: AsyncIterable<Uint8Array>,
  expected?: { digest: string; what: string },
): Promise<{ digest: string; size: number }> {
  const algorithm = expected ? parseDigest(expected.digest).algorithm : "sha256";
  const scratch = `${ctx.root}/blobs/.scratch-${Deno.pid}-${randomSuffix()}`;
  const hash = createHash(algorithm);
  let size = 0;
  try {
    const f = Deno.openSync(scratch, { write: true, createNew: true, mode: 0o644 });
    try {
      for await (const chunk of chunks) {
        hash.update(chunk);
        writeAll(f, chunk);
        size += chunk.length;
      }
    } finally {
      f.close();
    }
    const digest = `${algorithm}:${hash.digest("hex")}`;
    if (expected && digest !== expected.digest) {
      throw new Error(
        `${expected.what} does not match its digest: expected ${expected.digest}, got ${digest}`,
      );
    }
    commitBlob(ctx, digest, scratch, size);
    return { digest, size };
  } catch (err) {
    throw noSpace(err, "importing a blob", ctx.root);
  } finally {
    try {
      Deno.removeSync(scratch);
    } catch {
      // Already renamed into place.
    }
  }
}

/** Opens a blob for reading; the message says what to do when it is missing. */
export function openBlob(root: string, digest: string): Deno.FsFile {
  try {
    return Deno.openSync(blobPath(root, digest), { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`Blob ${digest} is not in the store: pull the image again`, { cause: err });
    }
    throw err;
  }
}

/** Every blob digest with a file in the store. */
export function listBlobDigests(root: string): string[] {
  const out: string[] = [];
  for (const algorithm of Object.keys(HEX)) {
    for (const e of readDirOrEmpty(`${root}/blobs/${algorithm}`)) {
      if (e.isFile && HEX[algorithm]!.test(e.name)) out.push(`${algorithm}:${e.name}`);
    }
  }
  return out;
}

/** Deletes blob `digest` (file and row); the caller holds its lease exclusively. */
export function deleteBlob(ctx: StoreContext, digest: string): number {
  const path = blobPath(ctx.root, digest);
  let size = 0;
  try {
    size = Deno.statSync(path).size;
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  ctx.db.prepare("DELETE FROM blobs WHERE digest = ?").run(digest);
  return size;
}

/** A disk-full error restated for the user; other errors pass through unchanged. */
export function noSpace(err: unknown, doing: string, root: string): unknown {
  if (!isNoSpace(err)) return err;
  return new Error(
    `No space left on the device holding "${root}" while ${doing}: free some space (for example "trun image prune") and try again`,
    { cause: err },
  );
}

function record(ctx: StoreContext, digest: string, size: number): void {
  transaction(ctx.db, () => {
    ctx.db.prepare("INSERT OR IGNORE INTO blobs (digest, size, created) VALUES (?, ?, ?)")
      .run(digest, size, Date.now());
  });
}

/** Writes all of `bytes`, looping over short writes. */
export function writeAll(f: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
}

/** fsync(2) of a file or directory by path. */
export function fsyncPath(path: string): void {
  const f = Deno.openSync(path, { read: true });
  try {
    f.syncSync();
  } finally {
    f.close();
  }
}

/** A short random suffix for temporary names. */
export function randomSuffix(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Directory entries, or none when the directory is missing. */
export function readDirOrEmpty(path: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(path)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}
