/**
 * Unpacked layers: `layers/<chain id hex>/`, one overlay lower directory per
 * layer, named by the OCI chain id (image-spec config.md: ChainID(L₀) =
 * DiffID(L₀), ChainID(Lₙ) = sha256(ChainID(Lₙ₋₁) + " " + DiffID(Lₙ))).
 *
 * A layer becomes visible only when complete: it is unpacked into
 * `layers/<blob key>.tmp-<random>` while holding the exclusive lock
 * `unpack-<blob key>`, flushed to disk (syncfs), renamed to its final name
 * and fsynced there, and only then recorded in the database, in one
 * transaction. Two processes unpacking the same blob wait on that lock, and
 * the second finds the layer done. The rename and the record happen under a
 * second lock, `commit-layer-<chain hex>`, because two different blobs (the
 * same diff compressed twice) can make the same chain id. A process killed
 * mid-unpack leaves a `.tmp-` directory whose lock is free, which repair()
 * removes; one killed between rename and record leaves a directory without
 * a row, which repair() removes too (after taking the commit lock and the
 * layer's lease, so a live process is never robbed).
 */

import type { Hash } from "node:crypto";
import { LayerError } from "../oci/layer_error.ts";
import { type DecodedLayer, WORKER_MIN_BYTES } from "../oci/layer_decode.ts";
import { isNoSpace, removeTree } from "../util/fs.ts";
import { syncfs } from "../../ffi/fs.ts";
import { BackgroundFlush } from "./background_flush.ts";
import { type StoreContext, transaction } from "./db.ts";
import {
  blobLeaseName,
  blobPath,
  createHash,
  deleteBlob,
  digestOf,
  fsyncPath,
  hasBlob,
  parseDigest,
  randomSuffix,
} from "./blobs.ts";
import { tryLock, withLock } from "./lock.ts";
import type { RecordFileWriter } from "./layer_records.ts";
import { hasRecord, keepBlobs, recordPath } from "./layer_record_paths.ts";

/** A compressed layer as a manifest lists it. */
export interface LayerDescriptor {
  /** Digest of the (usually compressed) blob. */
  digest: string;
  /** Its media type (decompression is decided by magic bytes; this is checked and recorded). */
  mediaType: string;
  /** Its size in bytes. */
  size: number;
}

/** How far {@link ensureLayers} is with one layer. */
export interface LayerProgress {
  /** The layer blob. */
  digest: string;
  /** `exists`: already unpacked; `unpacking`: started; `done`: unpacked now. */
  state: "exists" | "unpacking" | "done";
  /** The chain id, once known. */
  chainId?: string;
}

/** Options for {@link ensureLayers}. */
export interface EnsureLayersOptions {
  /** Give every file this owner (rootless without subordinate ids). */
  squashOwnership?: { uid: number; gid: number };
  /** Called as each layer is found or unpacked. */
  onProgress?: (p: LayerProgress) => void;
  /** Flush each unpacked layer to disk before it becomes visible (default true). */
  durable?: boolean;
  /**
   * Keep the compressed blobs after unpacking (default: the store setting,
   * `TRUN_KEEP_BLOBS`). Otherwise a blob is dropped once every layer made
   * from it in this call has a tar-split record.
   */
  keepBlobs?: boolean;
  /**
   * A layer blob still downloading to `path`: it is unpacked as it arrives
   * instead of after. `done` settles when the blob is in the store, and the
   * layer is committed only then.
   */
  incoming?: { digest: string; path: string; done: Promise<void> };
}

// Media types that are tar layers; the compression itself is told by magic.
const LAYER_TYPE =
  /^application\/vnd\.(oci\.image\.layer\.(nondistributable\.)?v1\.tar(\+gzip|\+zstd)?|docker\.image\.rootfs\.(foreign\.)?diff\.tar(\.gzip)?)$/;

/** The chain id of a layer with diff id `diffId` on top of chain `parent`. */
export function chainId(parent: string | undefined, diffId: string): string {
  if (parent === undefined) return diffId;
  return digestOf(`${parent} ${diffId}`);
}

/** The chain ids of a stack of diff ids, bottom to top. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  let parent: string | undefined;
  for (const d of diffIds) {
    parent = chainId(parent, d);
    out.push(parent);
  }
  return out;
}

/** The directory of the unpacked layer `chain`. */
export function layerDir(root: string, chain: string): string {
  return `${root}/layers/${parseDigest(chain).hex}`;
}

/** The lease that keeps the collector off layer `chain`. */
export function layerLeaseName(chain: string): string {
  return `lease-layer-${parseDigest(chain).hex}`;
}

/** True when `chain` is recorded and its directory is there. */
export function layerPresent(ctx: StoreContext, chain: string): boolean {
  const row = ctx.db.prepare("SELECT 1 AS ok FROM layers WHERE chain_id = ?").get(chain);
  return row !== undefined && isDir(layerDir(ctx.root, chain));
}

/**
 * Makes sure every layer is unpacked, in order, and returns the chain ids
 * bottom to top. Each layer blob must already be in the store. The diff id
 * is computed while unpacking, and the blob's own digest is checked on the
 * way. Layers already unpacked are skipped; every returned layer is leased
 * until the store is closed.
 */
export async function ensureLayers(
  ctx: StoreContext,
  layers: readonly LayerDescriptor[],
  opts: EnsureLayersOptions = {},
): Promise<string[]> {
  Deno.mkdirSync(`${ctx.root}/layers`, { recursive: true, mode: 0o755 });
  const out: string[] = [];
  let parent: string | undefined;
  for (const layer of layers) {
    if (!LAYER_TYPE.test(layer.mediaType)) {
      throw new Error(
        `Layer ${layer.digest} has media type "${layer.mediaType}", which is not a tar layer trun can unpack`,
      );
    }
    const known = knownChain(ctx, parent, layer.digest);
    if (known !== undefined) {
      ctx.lease(layerLeaseName(known));
      if (layerPresent(ctx, known)) {
        opts.onProgress?.({ digest: layer.digest, state: "exists", chainId: known });
        out.push(known);
        parent = known;
        continue;
      }
    }
    const { algorithm, hex } = parseDigest(layer.digest);
    const key = `${algorithm}-${hex}`;
    parent = await withLock(ctx.root, `unpack-${key}`, () => unpack(ctx, layer, parent, key, opts));
    out.push(parent);
  }
  if (!(opts.keepBlobs ?? keepBlobs())) dropRecordedBlobs(ctx, layers, out);
  return out;
}

// Drops each blob whose every layer here can be rebuilt from its record.
// A blob another process holds a lease on (it is about to unpack it) stays.
function dropRecordedBlobs(
  ctx: StoreContext,
  layers: readonly LayerDescriptor[],
  chains: readonly string[],
): void {
  const droppable = new Map<string, boolean>();
  layers.forEach((l, i) => {
    const ok = hasRecord(ctx.root, chains[i]!);
    droppable.set(l.digest, (droppable.get(l.digest) ?? true) && ok);
  });
  for (const [digest, ok] of droppable) if (ok) dropBlob(ctx, digest);
}

// Deletes a layer blob unless another process holds its lease (it is about
// to unpack it). Returns the bytes freed, or -1 when kept.
function dropBlob(ctx: StoreContext, digest: string): number {
  ctx.dropLease(blobLeaseName(digest));
  const lock = tryLock(ctx.root, blobLeaseName(digest));
  if (lock === null) return -1;
  try {
    return deleteBlob(ctx, digest);
  } finally {
    lock.close();
  }
}

/**
 * For prune: deletes layer blob `digest` when every layer unpacked from it
 * has a tar-split record (a concurrent pull can leave one behind) and the
 * store does not keep blobs. Returns the bytes freed, or -1 when kept.
 */
export function dropRebuildableBlob(ctx: StoreContext, digest: string): number {
  if (keepBlobs()) return -1;
  const chains = (ctx.db.prepare("SELECT chain_id FROM layers WHERE blob_digest = ?").all(
    digest,
  ) as { chain_id: string }[]).map((r) => r.chain_id);
  if (chains.length === 0 || !chains.every((c) => hasRecord(ctx.root, c))) return -1;
  return dropBlob(ctx, digest);
}

/**
 * The layer blobs of `layers` that need not be downloaded: every place the
 * blob takes in this stack is already unpacked. Those layers are leased.
 */
export function unpackedBlobs(ctx: StoreContext, layers: readonly LayerDescriptor[]): Set<string> {
  const ready = new Map<string, boolean>();
  let parent: string | undefined;
  let known = true;
  for (const layer of layers) {
    let ok = false;
    if (known) {
      const chain = knownChain(ctx, parent, layer.digest);
      if (chain !== undefined) {
        ctx.lease(layerLeaseName(chain));
        ok = layerPresent(ctx, chain);
      }
      parent = chain;
      known = ok;
    }
    ready.set(layer.digest, (ready.get(layer.digest) ?? true) && ok);
  }
  return new Set([...ready].filter(([, ok]) => ok).map(([d]) => d));
}

function knownChain(ctx: StoreContext, parent: string | undefined, blob: string) {
  const row = ctx.db.prepare("SELECT diff_id FROM blob_diffs WHERE blob_digest = ?").get(blob) as
    | { diff_id: string }
    | undefined;
  return row ? chainId(parent, row.diff_id) : undefined;
}

// Runs under the blob's unpack lock.
async function unpack(
  ctx: StoreContext,
  layer: LayerDescriptor,
  parent: string | undefined,
  key: string,
  opts: EnsureLayersOptions,
): Promise<string> {
  // Another process may have finished it while we waited for the lock.
  const known = knownChain(ctx, parent, layer.digest);
  if (known !== undefined && layerPresent(ctx, known)) {
    ctx.lease(layerLeaseName(known));
    opts.onProgress?.({ digest: layer.digest, state: "exists", chainId: known });
    return known;
  }
  ctx.lease(blobLeaseName(layer.digest));
  const source = blobPath(ctx.root, layer.digest);
  const incoming = opts.incoming?.digest === layer.digest ? opts.incoming : undefined;
  if (incoming !== undefined && !hasBlob(ctx, layer.digest)) {
    // A small blob is not worth following: it is read once it is there.
    if (layer.size < WORKER_MIN_BYTES) await incoming.done;
    else {
      try {
        return await unpackFrom(ctx, layer, parent, key, opts, incoming);
      } catch (err) {
        // The download's own error comes first. Otherwise the file may have
        // been rewritten under the reader (a resumed download that started
        // over): the blob is now in the store, verified, so read it again.
        await incoming.done;
        if (isNoSpace(err)) throw err;
      }
    }
  }
  let size: number;
  try {
    size = Deno.statSync(source).size;
  } catch (err) {
    throw new Error(`Layer ${layer.digest} is not in the store: pull the image again`, {
      cause: err,
    });
  }
  if (size !== layer.size) {
    throw new Error(
      `Layer ${layer.digest} in the store has ${size} bytes, but the manifest says ${layer.size}: ${
        discard(ctx, layer.digest)
      }`,
    );
  }
  return await unpackFrom(ctx, layer, parent, key, opts, { path: source });
}

// Unpacks the layer from its blob file: the stored blob, or one still
// downloading (`done` given), which must then be complete and verified
// before the layer is committed. Runs under the blob's unpack lock.
async function unpackFrom(
  ctx: StoreContext,
  layer: LayerDescriptor,
  parent: string | undefined,
  key: string,
  opts: EnsureLayersOptions,
  blob: { path: string; done?: Promise<void> },
): Promise<string> {
  opts.onProgress?.({ digest: layer.digest, state: "unpacking" });
  const layersDir = `${ctx.root}/layers`;
  const tmp = `${layersDir}/${key}.tmp-${randomSuffix()}`;
  const recordTmp = `${tmp}${RECORD_SUFFIX}`;
  let recordFile: RecordFileWriter | undefined;
  let decoded: DecodedLayer | undefined;
  let flusher: BackgroundFlush | undefined;
  try {
    const algorithm = parseDigest(layer.digest).algorithm;
    // Loaded here, not at startup: tar-stream and zlib are for pulls only.
    const [{ applyLayer }, { TarSplitRecorder }, { decodeLayerFile }, { RecordFileWriter }] =
      await Promise.all([
        import("../oci/layer_tar.ts"),
        import("../oci/tar_split.ts"),
        import("../oci/layer_decode.ts"),
        import("./layer_records.ts"),
      ]);
    const file = recordFile = new RecordFileWriter(recordTmp);
    // Squashed files belong to the caller, who cannot read a mode-0 file.
    const recorder = new TarSplitRecorder((b) => file.write(b), {
      ownerReadOnly: opts.squashOwnership !== undefined,
    });
    // A large blob is read, hashed and decompressed on a worker thread while
    // this one creates the files; a small one is not worth a worker's start.
    const hash = layer.size < WORKER_MIN_BYTES ? createHash(algorithm) : undefined;
    decoded = hash ? undefined : decodeLayerFile(
      blob.path,
      algorithm,
      blob.done
        ? { size: layer.size, written: blob.done, finalPath: blobPath(ctx.root, layer.digest) }
        : undefined,
    );
    const onThread = decoded;
    const durable = opts.durable ?? true;
    if (durable && layer.size >= WORKER_MIN_BYTES) flusher = new BackgroundFlush(layersDir);
    const result = await applyLayer(onThread ? onThread.tar : hashed(blob.path, hash!), tmp, {
      what: `layer ${layer.digest}`,
      recorder,
      ...(onThread ? { decodedDiffId: () => onThread.digests().diffId } : {}),
      ...(opts.squashOwnership ? { squashOwnership: opts.squashOwnership } : {}),
    });
    // A layer that cannot be rebuilt from disk keeps its blob instead.
    const unrecordable = recorder.finish();
    recordFile = undefined;
    await file.close();
    if (unrecordable !== undefined) Deno.removeSync(recordTmp);
    const actual = onThread ? onThread.digests().blobDigest : `${algorithm}:${hash!.digest("hex")}`;
    onThread?.close();
    if (blob.done !== undefined) {
      await blob.done;
      if (actual !== layer.digest) {
        throw new Error(`the download of layer ${layer.digest} changed while it was read`);
      }
    } else if (actual !== layer.digest) {
      throw new LayerError(
        `Layer ${layer.digest} in the store is corrupt (its content hashes to ${actual}): ${
          discard(ctx, layer.digest)
        }`,
      );
    }
    const chain = chainId(parent, result.diffId);
    ctx.lease(layerLeaseName(chain));
    if (flusher !== undefined) await flusher.stop();
    if (durable) syncfs(tmp);
    // The same chain can come from a differently compressed blob, under
    // another unpack lock: the commit lock makes check, rename and record one
    // step for each chain id.
    await withLock(ctx.root, layerCommitLockName(chain), () => {
      commit(ctx, layer, parent, chain, tmp, result, unrecordable ? undefined : recordTmp);
      return Promise.resolve();
    });
    opts.onProgress?.({ digest: layer.digest, state: "done", chainId: chain });
    return chain;
  } catch (err) {
    recordFile?.abort();
    decoded?.close();
    await flusher?.stop();
    removeTree(tmp);
    removeTree(recordTmp);
    if (isNoSpace(err) && !(err instanceof LayerError)) {
      throw new Error(
        `No space left while storing layer ${layer.digest} in "${layersDir}": free some space (for example "trun image prune") and try again`,
        { cause: err },
      );
    }
    throw err;
  }
}

function commit(
  ctx: StoreContext,
  layer: LayerDescriptor,
  parent: string | undefined,
  chain: string,
  tmp: string,
  result: { diffId: string; tarSize: number; unpackedSize: number },
  recordTmp: string | undefined,
): void {
  const final = layerDir(ctx.root, chain);
  if (layerPresent(ctx, chain)) {
    removeTree(tmp);
    if (recordTmp !== undefined) removeTree(recordTmp);
  } else {
    // A directory without a row is a leftover of a crash after the rename.
    if (isDir(final)) removeTree(final);
    // The record goes first: a recorded layer directory always has its
    // record, and a record without a directory is a leftover repair() drops.
    if (recordTmp !== undefined) Deno.renameSync(recordTmp, recordPath(ctx.root, chain));
    else removeTree(recordPath(ctx.root, chain));
    Deno.renameSync(tmp, final);
    fsyncPath(`${ctx.root}/layers`);
  }
  transaction(ctx.db, () => {
    ctx.db.prepare(
      `INSERT INTO layers (chain_id, diff_id, parent, blob_digest, media_type, size,
         unpacked_size, refcount, created)
       VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COUNT(*) FROM image_layers WHERE chain_id = ?), ?)
       ON CONFLICT (chain_id) DO NOTHING`,
    ).run(
      chain,
      result.diffId,
      parent ?? null,
      layer.digest,
      layer.mediaType,
      layer.size,
      result.unpackedSize,
      chain,
      Date.now(),
    );
    ctx.db.prepare(
      "INSERT OR REPLACE INTO blob_diffs (blob_digest, diff_id, tar_size) VALUES (?, ?, ?)",
    ).run(layer.digest, result.diffId, result.tarSize);
  });
}

/** The suffix of a layer's tar-split record beside an unpack directory (`<tmp>.tar-split`). */
export const RECORD_SUFFIX = ".tar-split";

/** The lock held while a layer directory is renamed into place and recorded. */
export function layerCommitLockName(chain: string): string {
  return `commit-layer-${parseDigest(chain).hex}`;
}

// Removes a damaged blob so the next pull downloads it again instead of
// finding it present; says what the user should do.
function discard(ctx: StoreContext, digest: string): string {
  ctx.dropLease(blobLeaseName(digest));
  const lock = tryLock(ctx.root, blobLeaseName(digest));
  if (lock === null) return `remove "${blobPath(ctx.root, digest)}" and pull again`;
  try {
    deleteBlob(ctx, digest);
  } finally {
    lock.close();
  }
  return "it has been removed; pull the image again";
}

// Reads a blob file in large chunks, feeding `hash` on the way.
async function* hashed(
  path: string,
  hash: Hash,
): AsyncGenerator<Uint8Array> {
  const { createReadStream } = await import("node:fs");
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    hash.update(chunk as Uint8Array);
    yield chunk as Uint8Array;
  }
}

/**
 * Deletes layer `chain` if no image uses it: row first (in a transaction
 * that re-checks the references), then the directory, renamed aside first so
 * a crash leaves a `.del-` name repair() finishes. The caller holds the
 * layer's lease exclusively. Returns the bytes freed, or -1 when kept.
 */
export function deleteLayer(ctx: StoreContext, chain: string): number {
  const removed = transaction(ctx.db, () => {
    const used = ctx.db.prepare("SELECT COUNT(*) AS n FROM image_layers WHERE chain_id = ?")
      .get(chain) as { n: number };
    if (used.n > 0) return undefined;
    const row = ctx.db.prepare("SELECT unpacked_size FROM layers WHERE chain_id = ?").get(chain) as
      | { unpacked_size: number }
      | undefined;
    ctx.db.prepare("DELETE FROM layers WHERE chain_id = ?").run(chain);
    return row?.unpacked_size ?? 0;
  });
  if (removed === undefined) return -1;
  removeTree(recordPath(ctx.root, chain));
  const dir = layerDir(ctx.root, chain);
  const aside = `${dir}.del-${randomSuffix()}`;
  try {
    Deno.renameSync(dir, aside);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return removed;
    throw err;
  }
  removeTree(aside);
  return removed;
}

/** True when `path` is a directory (not following a final symlink). */
export function isDir(path: string): boolean {
  try {
    return Deno.lstatSync(path).isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
