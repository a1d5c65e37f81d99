/**
 * The embedded store: image metadata in SQLite (`trun.db`), content-
 * addressed blobs (`blobs/sha256/<hex>`), unpacked layers
 * (`layers/<chain id hex>/`) and cross-process locks (`locks/`), all under
 * one root (`storeRoot()` by default).
 *
 * Every write is crash-safe (temporary name, flush, rename, then the
 * database row), so a `kill -9` at any moment leaves a store the next
 * command can use; `openStore()` runs repair() to clear what a killed
 * process left. Several trun processes can use one store at once: SQLite
 * waits for its write lock, unpacking one blob is serialised by a lock, and
 * anything a running process has just fetched or unpacked is leased, so a
 * concurrent prune does not take it away before the image is recorded.
 */

import {
  addContainer,
  addRecord,
  type ContainerRecord,
  type ContainerRow,
  findRecord,
  listRecords,
  liveContainers,
  processAlive,
  removeContainer,
  updateRecord,
} from "./containers.ts";
import type { DatabaseSync } from "node:sqlite";
import { openDb, type StoreContext, transaction } from "./db.ts";
import {
  blobLeaseName,
  blobLockName,
  blobPath,
  blobTempPath,
  commitBlob,
  ensureBlobDirs,
  hasBlob,
  importBlob,
  listBlobDigests,
  openBlob,
  randomSuffix,
  readDirOrEmpty,
  writeBlob,
} from "./blobs.ts";
import {
  dropRebuildableBlob,
  ensureLayers,
  type EnsureLayersOptions,
  isDir,
  layerCommitLockName,
  type LayerDescriptor,
  layerLeaseName,
  unpackedBlobs,
} from "./layers.ts";
import type { TarSource } from "./layer_records.ts";
import {
  collectBlob,
  collectLayer,
  findImage,
  imageManifest,
  type ImageRecord,
  layerPaths,
  layerSizes,
  listImages,
  manifestByDigest,
  recordImage,
  type RecordImageInput,
  removeImage,
  type RemoveImageResult,
  type StoredManifest,
  tagImage,
} from "./images.ts";
import { sweepFreeLocks, takeLease, tryLock, unlinkHeldLock, withLock } from "./lock.ts";
import {
  createVolume,
  ensureVolumeDir,
  getVolume,
  listVolumes,
  type NewVolume,
  removeVolume,
  sweepVolumeLeftovers,
  volumeDataPath,
  type VolumeRecord,
  volumeUsers,
} from "./volumes.ts";
import { removeTree } from "../util/fs.ts";
import { buildCacheImages, cachedStep, dropStaleSteps, rememberStep } from "./build_cache.ts";
import { storeRoot } from "../paths.ts";

export type { EnsureLayersOptions, LayerDescriptor, LayerProgress } from "./layers.ts";
export type { ImageRecord, RecordImageInput, RemoveImageResult, StoredManifest } from "./images.ts";
export { ImageError } from "./images.ts";
export { blobLockName } from "./blobs.ts";
export type {
  ContainerNetwork,
  ContainerRecord,
  ContainerRow,
  ContainerVolume,
  MountFlags,
  NetworkEndpoint,
} from "./containers.ts";
export type { NewVolume, VolumeBacking, VolumeRecord } from "./volumes.ts";
export {
  ANONYMOUS_LABEL,
  checkVolumeName,
  isAnonymous,
  VOLUME_NAME_PATTERN,
  volumeBacking,
} from "./volumes.ts";

/** Options for {@link openStore} and the {@link Store} constructor. */
export interface StoreOptions {
  /** Run repair() on open (default true). */
  repair?: boolean;
  /** A `.partial` download untouched this long is dropped by repair() (default 24 h). */
  partialMaxAgeMs?: number;
  /**
   * Open only a store that is there (else throw {@link StoreGoneError}): a
   * process that outlives its container (conmon's exit command, the
   * monitor's last record) must not make an empty store where one was just
   * deleted.
   */
  existing?: boolean;
}

/** The store an `existing` open asked for is not there (it was deleted). */
export class StoreGoneError extends Error {
  constructor(root: string) {
    super(`There is no store at "${root}" any more`);
    this.name = "StoreGoneError";
  }
}

/** What repair() cleaned up; empty on a healthy store. */
export interface RepairReport {
  /** One line per thing removed or fixed, naming it. */
  actions: string[];
}

/** What prune() freed. */
export interface PruneResult {
  /** Chain ids of the layers deleted. */
  layers: string[];
  /** Digests of the blobs deleted. */
  blobs: string[];
  /** Bytes freed (unpacked layer content plus blob files). */
  bytes: number;
}

/** The store under one root directory. Close it to release its leases. */
export class Store implements StoreContext {
  /** The root directory. */
  readonly root: string;
  /** The metadata database. */
  readonly db: DatabaseSync;
  readonly #partialMaxAgeMs: number;
  readonly #leases = new Map<string, Deno.FsFile>();

  /** Opens (creating if needed) the store at `root`. */
  constructor(root: string, opts: StoreOptions = {}) {
    this.root = root;
    this.#partialMaxAgeMs = opts.partialMaxAgeMs ?? 24 * 3600 * 1000;
    if (opts.existing && sizeOrNull(`${root}/trun.db`) === null) throw new StoreGoneError(root);
    try {
      Deno.mkdirSync(root, { recursive: true, mode: 0o700 });
      for (const d of ["layers", "locks"]) Deno.mkdirSync(`${root}/${d}`, { recursive: true });
      ensureBlobDirs(root);
    } catch (err) {
      throw new Error(`Cannot create the store at "${root}": ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.db = openDb(`${root}/trun.db`);
    if (opts.repair ?? true) this.repair();
  }

  /** Releases leases and closes the database. */
  close(): void {
    for (const f of this.#leases.values()) f.close();
    this.#leases.clear();
    this.db.close();
  }

  /** Takes a shared lease on `name` for this store's lifetime (once). */
  lease(name: string): void {
    if (!this.#leases.has(name)) this.#leases.set(name, takeLease(this.root, name));
  }

  /** Gives up this store's lease on `name`. */
  dropLease(name: string): void {
    this.#leases.get(name)?.close();
    this.#leases.delete(name);
  }

  /** True when blob `digest` is stored (and then leased until close). */
  hasBlob(digest: string): boolean {
    return hasBlob(this, digest);
  }

  /** The path of blob `digest`. */
  blobPath(digest: string): string {
    return blobPath(this.root, digest);
  }

  /**
   * The stable temporary path for downloading `digest` (`<hex>.partial`).
   * Hold `withLock(blobLockName(digest), …)` while writing it.
   */
  blobTempPath(digest: string): string {
    return blobTempPath(this.root, digest);
  }

  /** Moves a verified, complete download into place as blob `digest` and records it. */
  commitBlob(digest: string, tempPath: string, expectedSize?: number): void {
    commitBlob(this, digest, tempPath, expectedSize);
  }

  /** Stores small content (config, manifest) as a blob after checking its digest. */
  writeBlob(digest: string, bytes: Uint8Array): void {
    writeBlob(this, digest, bytes);
  }

  /** Streams content into the store as a blob, checking `expected` when given. */
  importBlob(
    chunks: AsyncIterable<Uint8Array>,
    expected?: { digest: string; what: string },
  ): Promise<{ digest: string; size: number }> {
    return importBlob(this, chunks, expected);
  }

  /** Opens blob `digest` for reading. */
  openBlob(digest: string): Deno.FsFile {
    return openBlob(this.root, digest);
  }

  /** Runs `fn` holding the cross-process exclusive lock `name` (not re-entrant). */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withLock(this.root, name, fn);
  }

  /** Inside `withLock(name, …)`: deletes that lock's file, for an item that is gone for good. */
  dropLockFile(name: string): void {
    unlinkHeldLock(this.root, name);
  }

  /** Unpacks the layers (blobs already stored) in order; returns chain ids bottom to top. */
  ensureLayers(layers: readonly LayerDescriptor[], opts?: EnsureLayersOptions): Promise<string[]> {
    return ensureLayers(this, layers, opts);
  }

  /** The layer blobs that need no download: each place they take in `layers` is unpacked. */
  unpackedBlobs(layers: readonly LayerDescriptor[]): Set<string> {
    return unpackedBlobs(this, layers);
  }

  /**
   * An image's layers, bottom first, as {@link layerTar} reads them, with
   * the size of each uncompressed tar.
   */
  imageTars(imageId: string): (TarSource & { tarSize: number })[] {
    const rows = this.db.prepare(
      `SELECT l.chain_id AS chain, l.diff_id AS diffId, l.blob_digest AS blobDigest,
         bd.tar_size AS tarSize
       FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
       LEFT JOIN blob_diffs bd ON bd.blob_digest = l.blob_digest
       WHERE il.image_id = ? ORDER BY il.position`,
    ).all(imageId) as unknown as (TarSource & { tarSize: number | null })[];
    return rows.map((r) => {
      if (r.tarSize === null) {
        throw new Error(
          `Layer ${r.diffId} of image ${imageId} has no recorded tar size: pull the image again`,
        );
      }
      this.lease(layerLeaseName(r.chain));
      return { chain: r.chain, diffId: r.diffId, blobDigest: r.blobDigest, tarSize: r.tarSize };
    });
  }

  /** The exact uncompressed tar of a stored layer, checked against its diff id at the end. */
  async *layerTar(layer: TarSource): AsyncGenerator<Uint8Array> {
    // Loaded here: zlib and the tar code are for save and push only.
    const { layerTar } = await import("./layer_records.ts");
    yield* layerTar(this.root, layer);
  }

  /**
   * A new read-write file in the store with no name on disk (its name is
   * removed at once), so a killed process leaves nothing behind; for a
   * layer compressed again to be pushed.
   */
  scratchFile(): Deno.FsFile {
    const path = `${this.root}/blobs/.scratch-${Deno.pid}-${randomSuffix()}`;
    const file = Deno.openSync(path, { read: true, write: true, createNew: true, mode: 0o600 });
    Deno.removeSync(path);
    return file;
  }

  /** Records a pulled or loaded image; see images.ts for the checks. */
  recordImage(input: RecordImageInput): ImageRecord {
    return recordImage(this, input);
  }

  /** Every image, newest first. */
  listImages(): ImageRecord[] {
    return listImages(this);
  }

  /** An image by id, reference or id prefix, or undefined. */
  findImage(refOrIdPrefix: string): ImageRecord | undefined {
    return findImage(this, refOrIdPrefix);
  }

  /** Points `reference` at image `id`. */
  tagImage(id: string, reference: string): void {
    tagImage(this, id, reference);
  }

  /**
   * `docker rmi`: untags, deletes when no tag is left, frees unused layers
   * and blobs, and the lock files nobody holds (the freed items').
   */
  removeImage(refOrId: string, opts: { force?: boolean } = {}): RemoveImageResult {
    const result = removeImage(this, refOrId, opts);
    if (result.deleted.length > 0) sweepFreeLocks(this.root);
    return result;
  }

  /** Records a running container of image `imageId` (rmi refuses the image meanwhile). */
  addContainer(row: ContainerRow): void {
    addContainer(this, row);
  }

  /** The running containers of an image (all images when omitted); stale records are dropped. */
  liveContainers(imageId?: string): ContainerRow[] {
    return liveContainers(this, imageId);
  }

  /** Unpacked bytes of each layer of an image, bottom first. */
  layerSizes(imageId: string): number[] {
    return layerSizes(this, imageId);
  }

  /** Forgets a container (a foreground row or a record). */
  removeContainer(id: string): void {
    removeContainer(this, id);
  }

  /** Records a container that outlives its command; fails on a name in use. */
  addRecord(rec: ContainerRecord): void {
    addRecord(this, rec);
  }

  /** Updates a container record in one transaction; undefined when it is gone. */
  updateRecord(
    id: string,
    fn: (rec: ContainerRecord) => ContainerRecord,
  ): ContainerRecord | undefined {
    return updateRecord(this, id, fn);
  }

  /** Every container record, newest first. */
  listRecords(): ContainerRecord[] {
    return listRecords(this);
  }

  /** The container record an id, name or id prefix names, or undefined. */
  findRecord(ref: string): ContainerRecord | undefined {
    return findRecord(this, ref);
  }

  /** The directory of container `id` (writable layer, bundle, logs). */
  containerDir(id: string): string {
    return `${this.root}/containers/${id}`;
  }

  /** Creates a volume, or finds the existing one of that name (`created` says which). */
  createVolume(v: NewVolume): { volume: VolumeRecord; created: boolean } {
    return createVolume(this, v);
  }

  /** The volume named `name`, or undefined. */
  getVolume(name: string): VolumeRecord | undefined {
    return getVolume(this, name);
  }

  /** Every volume, by name. */
  listVolumes(): VolumeRecord[] {
    return listVolumes(this);
  }

  /** Removes a volume and its data; false when there is none of that name. */
  removeVolume(name: string): boolean {
    return removeVolume(this, name);
  }

  /** The ids of the containers using each volume (records, and live foreground runs). */
  volumeUsers(): Map<string, string[]> {
    return volumeUsers(this);
  }

  /** A volume's `_data` directory (its Mountpoint). */
  volumePath(name: string): string {
    return volumeDataPath(this.root, name);
  }

  /** A volume's `_data` directory, made when missing. */
  ensureVolumeDir(name: string): string {
    return ensureVolumeDir(this.root, name);
  }

  /** Removes what killed volume removals left; returns how many. */
  sweepVolumeLeftovers(): number {
    return sweepVolumeLeftovers(this.root);
  }

  /** The image build step `key` made, if it is still here. */
  cachedStep(key: string): string | undefined {
    return cachedStep(this, key);
  }

  /** Remembers that build step `key` made image `imageId`. */
  rememberStep(key: string, imageId: string): void {
    rememberStep(this, key, imageId);
  }

  /** Ids of the images trun build's cache holds (intermediate when untagged). */
  buildCacheImages(): Set<string> {
    dropStaleSteps(this);
    return buildCacheImages(this);
  }

  /** The manifest an image was recorded with (for save and push). */
  manifest(image: string): StoredManifest {
    return imageManifest(this, image);
  }

  /** A stored manifest by digest (what push.ts reads), or undefined. */
  getManifest(digest: string): StoredManifest | undefined {
    return manifestByDigest(this, digest);
  }

  /** The unpacked layer directories of an image, bottom to top. */
  layerPaths(imageId: string): string[] {
    return layerPaths(this, imageId);
  }

  /**
   * Deletes layers no image uses and blobs no manifest needs, and layer
   * blobs whose layers can all be rebuilt from their tar-split records
   * (one a concurrent pull kept), skipping any another trun process holds
   * a lease on (it is about to record them), then the lock files nobody
   * holds.
   */
  prune(): PruneResult {
    const out: PruneResult = { layers: [], blobs: [], bytes: 0 };
    this.#recount();
    const unused = this.db.prepare(
      "SELECT chain_id FROM layers WHERE refcount = 0 ORDER BY chain_id",
    ).all() as { chain_id: string }[];
    for (const { chain_id } of unused) {
      const freed = collectLayer(this, chain_id);
      if (freed >= 0) {
        out.layers.push(chain_id);
        out.bytes += freed;
      }
    }
    const needed = new Set(
      (this.db.prepare("SELECT DISTINCT blob_digest FROM manifest_blobs").all() as {
        blob_digest: string;
      }[]).map((r) => r.blob_digest),
    );
    for (const digest of listBlobDigests(this.root)) {
      const freed = needed.has(digest)
        ? dropRebuildableBlob(this, digest)
        : collectBlob(this, digest);
      if (freed >= 0) {
        out.blobs.push(digest);
        out.bytes += freed;
      }
    }
    sweepFreeLocks(this.root);
    return out;
  }

  /**
   * Clears what killed processes left: unpack directories (`layers/*.tmp-*`)
   * whose unpack lock is free, half-deleted layers (`*.del-*`), layer
   * directories never recorded, blob temporaries whose writer is gone, and
   * stale `.partial` downloads; drops rows whose files are missing and
   * recounts layer references. Safe while other trun processes work: it only
   * touches an item after taking its lock without waiting.
   */
  repair(): RepairReport {
    const actions: string[] = [];
    const remove = (path: string, why: string) => {
      try {
        removeTree(path);
        actions.push(`removed "${path}": ${why}`);
      } catch (err) {
        actions.push(`could not remove "${path}" (${why}): ${(err as Error).message}`);
      }
    };
    const layers = `${this.root}/layers`;
    const recorded = new Set(
      (this.db.prepare("SELECT chain_id FROM layers").all() as { chain_id: string }[])
        .map((r) => r.chain_id),
    );
    const seen = new Set<string>();
    for (const e of readDirOrEmpty(layers)) {
      const path = `${layers}/${e.name}`;
      const tmp = /^([a-z0-9]+-[a-f0-9]+)\.tmp-[a-f0-9]+(\.tar-split)?$/.exec(e.name);
      const record = /^([a-f0-9]{64})\.tar-split\.gz$/.exec(e.name);
      if (tmp) {
        withFreeLock(this.root, `unpack-${tmp[1]}`, () => remove(path, "unpack interrupted"));
      } else if (record) {
        const chain = `sha256:${record[1]}`;
        if (recorded.has(chain) || isDir(`${layers}/${record[1]}`)) continue;
        withFreeLock(this.root, layerCommitLockName(chain), () => {
          const row = this.db.prepare("SELECT 1 AS ok FROM layers WHERE chain_id = ?").get(chain);
          if (row === undefined && !isDir(`${layers}/${record[1]}`)) {
            remove(path, "record of a layer never recorded");
          }
        });
      } else if (/\.del-[a-f0-9]+$/.test(e.name)) {
        remove(path, "deletion interrupted");
      } else if (/^[a-f0-9]{64}$/.test(e.name)) {
        const chain = `sha256:${e.name}`;
        seen.add(chain);
        if (!recorded.has(chain)) {
          withFreeLock(
            this.root,
            layerCommitLockName(chain),
            () =>
              withFreeLock(this.root, layerLeaseName(chain), () => {
                const row = this.db.prepare("SELECT 1 AS ok FROM layers WHERE chain_id = ?")
                  .get(chain);
                if (row === undefined) remove(path, "layer never recorded");
              }),
          );
        }
      }
    }
    const dropLayer = this.db.prepare("DELETE FROM layers WHERE chain_id = ?");
    for (const chain of recorded) {
      if (seen.has(chain) || isDir(`${layers}/${chain.slice(7)}`)) continue;
      dropLayer.run(chain);
      actions.push(`forgot layer ${chain}: its directory is missing`);
    }

    const now = Date.now();
    for (const algorithm of ["sha256", "sha512"]) {
      const dir = `${this.root}/blobs/${algorithm}`;
      for (const e of readDirOrEmpty(dir)) {
        const path = `${dir}/${e.name}`;
        const partial = /^([a-f0-9]+)\.partial$/.exec(e.name);
        const tmp = /^([a-f0-9]+)\.tmp-[a-f0-9]+$/.exec(e.name);
        if (partial) {
          const mtime = mtimeOrNull(path);
          if (mtime === null || now - mtime < this.#partialMaxAgeMs) continue;
          withFreeLock(
            this.root,
            blobLockName(`${algorithm}:${partial[1]}`),
            () => remove(path, "download abandoned"),
          );
        } else if (tmp) {
          withFreeLock(
            this.root,
            blobLeaseName(`${algorithm}:${tmp[1]}`),
            () => remove(path, "write interrupted"),
          );
        }
      }
    }
    for (const e of readDirOrEmpty(`${this.root}/blobs`)) {
      const scratch = /^\.scratch-(\d+)-[a-f0-9]+$/.exec(e.name);
      if (scratch && !processAlive(Number(scratch[1]))) {
        remove(`${this.root}/blobs/${e.name}`, "import interrupted");
      }
    }
    const files = new Set(listBlobDigests(this.root));
    const rows = new Set(
      (this.db.prepare("SELECT digest FROM blobs").all() as { digest: string }[])
        .map((r) => r.digest),
    );
    const gone = [...rows].filter((d) => !files.has(d));
    const unrecorded = [...files].filter((d) => !rows.has(d));
    if (gone.length > 0 || unrecorded.length > 0) {
      transaction(this.db, () => {
        const drop = this.db.prepare("DELETE FROM blobs WHERE digest = ?");
        for (const d of gone) {
          drop.run(d);
          actions.push(`forgot blob ${d}: its file is missing`);
        }
        const add = this.db.prepare(
          "INSERT OR IGNORE INTO blobs (digest, size, created) VALUES (?, ?, ?)",
        );
        for (const d of unrecorded) {
          const size = sizeOrNull(this.blobPath(d));
          if (size !== null) add.run(d, size, now);
        }
      });
    }
    this.#recount();
    return { actions };
  }

  // Reference counts are derived data: recomputing them heals any drift.
  // Only writes when something drifted, so a healthy open stays read-only.
  #recount(): void {
    const count = "(SELECT COUNT(*) FROM image_layers il WHERE il.chain_id = layers.chain_id)";
    const drift = this.db.prepare(`SELECT 1 AS ok FROM layers WHERE refcount != ${count} LIMIT 1`)
      .get();
    if (drift === undefined) return;
    transaction(this.db, () => this.db.exec(`UPDATE layers SET refcount = ${count}`));
  }
}

/** Opens the store at `root` (default: `storeRoot()`) and repairs it. */
export function openStore(root: string = storeRoot(), opts: StoreOptions = {}): Store {
  return new Store(root, opts);
}

// Runs `fn` only if lock `name` is free right now, holding it meanwhile.
function withFreeLock(root: string, name: string, fn: () => void): void {
  const lock = tryLock(root, name);
  if (lock === null) return;
  try {
    fn();
  } finally {
    lock.close();
  }
}

function sizeOrNull(path: string): number | null {
  try {
    return Deno.statSync(path).size;
  } catch {
    return null;
  }
}

function mtimeOrNull(path: string): number | null {
  try {
    return Deno.lstatSync(path).mtime?.getTime() ?? null;
  } catch {
    return null;
  }
}
