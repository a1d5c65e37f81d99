/**
 * Images in the store: an image is its config digest (the image id), the
 * manifest it came with, the references that name it (`name:tag`, and
 * `name@digest` for pulls by digest and for Docker's RepoDigests), and its
 * stack of unpacked layers. Recording an image and removing one are single
 * transactions that keep the layers' reference counts exact; deleting the
 * layers and blobs an image leaves unused is done after, under the items'
 * leases, and a crash in between leaves only garbage that prune() collects.
 *
 * Reference resolution follows Docker: a full id wins, then a reference
 * (`ubuntu` means `docker.io/library/ubuntu:latest`), then an id prefix.
 */

import { liveContainers } from "./containers.ts";
import { parseReference } from "../oci/reference.ts";
import { type ImageConfig, parseImageConfig } from "../oci/manifest.ts";
import { type StoreContext, transaction } from "./db.ts";
import { blobLeaseName, deleteBlob, digestOf, parseDigest, writeBlob } from "./blobs.ts";
import { chainIds, deleteLayer, type LayerDescriptor, layerDir, layerLeaseName } from "./layers.ts";
import { tryLock } from "./lock.ts";

/** What a pull (or a load) hands over to record an image. */
export interface RecordImageInput {
  /** The reference it was pulled as (`ubuntu`, `x@sha256:…`); none for an untagged load. */
  reference?: string;
  /** Digest of the manifest bytes. */
  manifestDigest: string;
  /** The manifest exactly as received. */
  manifestBytes: Uint8Array;
  /** Its media type. */
  manifestMediaType: string;
  /** Digest of the config bytes: the image id. */
  configDigest: string;
  /** The config exactly as received. */
  configBytes: Uint8Array;
  /** The manifest's layers, bottom first; each must have gone through ensureLayers(). */
  layers: readonly LayerDescriptor[];
  /** Digest of the index the manifest was chosen from, when pulled through one (Docker's RepoDigest). */
  indexDigest?: string;
}

/** An image as the store knows it. */
export interface ImageRecord {
  /** The config digest (`sha256:…`). */
  id: string;
  /** The manifest it was last recorded with. */
  manifestDigest: string;
  /** That manifest's media type. */
  manifestMediaType: string;
  /** Creation time from the config (RFC 3339), if it says. */
  created: string | undefined;
  /** When it was recorded here (ms since the epoch). */
  added: number;
  /** Sum of the unpacked layer sizes, in bytes. */
  size: number;
  /** The parsed config. */
  config: ImageConfig;
  /** Fully qualified `name:tag` references, sorted. */
  tags: string[];
  /** Fully qualified `name@digest` references, sorted. */
  digests: string[];
  /** Chain ids of its layers, bottom to top. */
  layers: string[];
}

/** What removeImage() did, in Docker's terms. */
export interface RemoveImageResult {
  /** References removed. */
  untagged: string[];
  /** The image id and layer chain ids deleted. */
  deleted: string[];
}

/** A request the user can fix (unknown image, image in use): the CLI prints it as is. */
export class ImageError extends Error {
  /** `not-found`, `ambiguous` or `conflict`. */
  readonly kind: "not-found" | "ambiguous" | "conflict";
  /** Builds the error. */
  constructor(kind: "not-found" | "ambiguous" | "conflict", message: string) {
    super(message);
    this.name = "ImageError";
    this.kind = kind;
  }
}

interface ImageRow {
  id: string;
  manifestDigest: string;
  created: string | null;
  added: number;
  size: number;
  config: string;
  mediaType: string | null;
}

/**
 * Records an image whose blobs are stored and layers unpacked: checks both
 * digests and that the layers unpack to the config's diff ids, stores the
 * config as a blob, and in one transaction adds the image, its manifest,
 * its layer references and the reference it was pulled as (moving that tag
 * from any older image, which is kept untagged).
 */
export function recordImage(ctx: StoreContext, input: RecordImageInput): ImageRecord {
  const what = input.reference ?? input.configDigest;
  checkDigest(input.manifestBytes, input.manifestDigest, `manifest of "${what}"`);
  checkDigest(input.configBytes, input.configDigest, `config of "${what}"`);
  const config = parseImageConfig(input.configBytes, what);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== input.layers.length) {
    throw new Error(
      `Image "${what}" is inconsistent: its manifest lists ${input.layers.length} layers but its config ${diffIds.length}`,
    );
  }
  const diffOf = ctx.db.prepare("SELECT diff_id FROM blob_diffs WHERE blob_digest = ?");
  input.layers.forEach((layer, i) => {
    const row = diffOf.get(layer.digest) as { diff_id: string } | undefined;
    if (row === undefined) {
      throw new Error(`Layer ${layer.digest} of "${what}" has not been unpacked: pull it again`);
    }
    if (row.diff_id !== diffIds[i]) {
      throw new Error(
        `Layer ${layer.digest} of "${what}" unpacks to ${row.diff_id}, but the image config says ${
          diffIds[i]
        }: the image is corrupt or was tampered with`,
      );
    }
  });
  const chains = chainIds(diffIds);
  for (const chain of chains) ctx.lease(layerLeaseName(chain));
  writeBlob(ctx, input.configDigest, input.configBytes);
  const ref = input.reference !== undefined ? normalizeReference(input.reference) : undefined;

  transaction(ctx.db, () => {
    const present = ctx.db.prepare("SELECT unpacked_size FROM layers WHERE chain_id = ?");
    let size = 0;
    for (const chain of chains) {
      const row = present.get(chain) as { unpacked_size: number } | undefined;
      if (row === undefined) {
        throw new Error(
          `Layer ${chain} of "${what}" is no longer in the store (removed by a concurrent "trun rmi" or prune): pull again`,
        );
      }
      size += row.unpacked_size;
    }
    const now = Date.now();
    const exists = ctx.db.prepare("SELECT 1 AS ok FROM images WHERE id = ?").get(
      input.configDigest,
    );
    if (exists === undefined) {
      ctx.db.prepare(
        "INSERT INTO images (id, manifest_digest, created, added, size, config) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(
        input.configDigest,
        input.manifestDigest,
        config.created ?? null,
        now,
        size,
        new TextDecoder().decode(input.configBytes),
      );
      const link = ctx.db.prepare(
        "INSERT INTO image_layers (image_id, position, chain_id) VALUES (?, ?, ?)",
      );
      const bump = ctx.db.prepare("UPDATE layers SET refcount = refcount + 1 WHERE chain_id = ?");
      chains.forEach((chain, i) => {
        link.run(input.configDigest, i, chain);
        bump.run(chain);
      });
    } else {
      ctx.db.prepare("UPDATE images SET manifest_digest = ? WHERE id = ?")
        .run(input.manifestDigest, input.configDigest);
    }
    ctx.db.prepare(
      "INSERT OR IGNORE INTO manifests (digest, image_id, media_type, bytes) VALUES (?, ?, ?, ?)",
    ).run(input.manifestDigest, input.configDigest, input.manifestMediaType, input.manifestBytes);
    const need = ctx.db.prepare(
      "INSERT OR IGNORE INTO manifest_blobs (manifest_digest, blob_digest) VALUES (?, ?)",
    );
    need.run(input.manifestDigest, input.configDigest);
    for (const layer of input.layers) need.run(input.manifestDigest, layer.digest);
    if (ref !== undefined) {
      const put = ctx.db.prepare(
        "INSERT OR REPLACE INTO tags (reference, image_id, created) VALUES (?, ?, ?)",
      );
      if (ref.tag !== undefined) put.run(ref.tagged, input.configDigest, now);
      // Docker's RepoDigests: the repository at the manifest it came with,
      // and at the index it was chosen from (what `pull` prints and what a
      // user pulls by), so `name@<index digest>` finds the image again.
      put.run(`${ref.name}@${input.manifestDigest}`, input.configDigest, now);
      if (input.indexDigest !== undefined) {
        put.run(`${ref.name}@${input.indexDigest}`, input.configDigest, now);
      }
    }
  });
  return getImage(ctx, input.configDigest)!;
}

/** Every image, newest first. */
export function listImages(ctx: StoreContext): ImageRecord[] {
  const ids = ctx.db.prepare("SELECT id FROM images ORDER BY added DESC, id").all() as {
    id: string;
  }[];
  return ids.map((r) => getImage(ctx, r.id)!);
}

/**
 * Finds an image by full id, reference or unambiguous id prefix; undefined
 * when nothing matches. Throws {@link ImageError} for an ambiguous prefix.
 */
export function findImage(ctx: StoreContext, query: string): ImageRecord | undefined {
  const id = resolveImageId(ctx, query);
  return id === undefined ? undefined : getImage(ctx, id);
}

/** Points `reference` at image `image` (an id, prefix or reference), moving it from another image. */
export function tagImage(ctx: StoreContext, image: string, reference: string): void {
  const id = resolveImageId(ctx, image);
  if (id === undefined) throw noSuchImage(image);
  const ref = normalizeReference(reference);
  if (ref.tag === undefined) {
    throw new Error(`Cannot tag with "${reference}": a tag cannot be a digest; use name:tag`);
  }
  ctx.db.prepare("INSERT OR REPLACE INTO tags (reference, image_id, created) VALUES (?, ?, ?)")
    .run(ref.tagged, id, Date.now());
}

/**
 * Removes a reference or an image, the way `docker rmi` does. By reference:
 * the tag goes, and when the image has no tag left it is deleted with its
 * digest references. By id: all its references go and the image is
 * deleted; several tags need `force`. An image a container uses is never
 * deleted: without `force` the removal is refused, with it the image is
 * only untagged. Layers and blobs left unused are deleted after.
 */
export function removeImage(
  ctx: StoreContext,
  query: string,
  opts: { force?: boolean } = {},
): RemoveImageResult {
  const force = opts.force ?? false;
  const result: RemoveImageResult = { untagged: [], deleted: [] };
  let freedChains: string[] = [];
  let freedBlobs: string[] = [];
  transaction(ctx.db, () => {
    const byRef = lookupReference(ctx, query);
    const id = byRef?.imageId ?? resolveImageId(ctx, query);
    if (id === undefined) throw noSuchImage(query);
    const refs = referencesOf(ctx, id);
    const tags = refs.filter((r) => !r.includes("@"));
    const users = containersUsing(ctx, id);
    let drop: string[];
    if (byRef !== undefined && tags.some((t) => t !== byRef.reference)) {
      drop = [byRef.reference];
    } else {
      if (byRef === undefined && tags.length > 1 && !force) {
        throw new ImageError(
          "conflict",
          `Cannot remove image ${short(id)}: it is tagged ${
            tags.map((t) => `"${t}"`).join(", ")
          }; remove the tags one by one or use --force`,
        );
      }
      if (users.length > 0 && !force) {
        throw new ImageError(
          "conflict",
          `Cannot remove image "${query}": container ${
            users.map((u) => `"${u}"`).join(", ")
          } uses it; remove the container first or use --force`,
        );
      }
      drop = users.length > 0 && byRef !== undefined ? [byRef.reference] : refs;
    }
    const del = ctx.db.prepare("DELETE FROM tags WHERE reference = ?");
    for (const r of drop) {
      del.run(r);
      result.untagged.push(r);
    }
    if (users.length === 0 && referencesOf(ctx, id).filter((r) => !r.includes("@")).length === 0) {
      for (const r of referencesOf(ctx, id)) {
        del.run(r);
        result.untagged.push(r);
      }
      ({ chains: freedChains, blobs: freedBlobs } = deleteImageRows(ctx, id));
      result.deleted.push(id);
    }
  });
  for (const chain of freedChains) {
    if (collectLayer(ctx, chain) >= 0) result.deleted.push(chain);
  }
  for (const blob of freedBlobs) collectBlob(ctx, blob);
  return result;
}

/** The manifest an image was last recorded with, exactly as received. */
export interface StoredManifest {
  /** Its digest. */
  digest: string;
  /** Its media type. */
  mediaType: string;
  /** Its bytes. */
  bytes: Uint8Array;
}

/** The manifest of image `image` (an id, prefix or reference). */
export function imageManifest(ctx: StoreContext, image: string): StoredManifest {
  const id = resolveImageId(ctx, image);
  if (id === undefined) throw noSuchImage(image);
  const row = ctx.db.prepare(
    `SELECT m.digest, m.media_type, m.bytes FROM images i
       JOIN manifests m ON m.digest = i.manifest_digest WHERE i.id = ?`,
  ).get(id) as { digest: string; media_type: string; bytes: Uint8Array } | undefined;
  if (row === undefined) {
    throw new Error(`Image ${short(id)} has no manifest in the store: pull it again`);
  }
  return { digest: row.digest, mediaType: row.media_type, bytes: new Uint8Array(row.bytes) };
}

/** A stored manifest by its digest, or undefined. */
export function manifestByDigest(ctx: StoreContext, digest: string): StoredManifest | undefined {
  const row = ctx.db.prepare("SELECT digest, media_type, bytes FROM manifests WHERE digest = ?")
    .get(digest) as { digest: string; media_type: string; bytes: Uint8Array } | undefined;
  return row && { digest: row.digest, mediaType: row.media_type, bytes: new Uint8Array(row.bytes) };
}

/** The unpacked layer directories of an image, bottom to top (overlay lowerdirs reversed). */
export function layerPaths(ctx: StoreContext, image: string): string[] {
  const id = resolveImageId(ctx, image);
  if (id === undefined) throw noSuchImage(image);
  const chains = layersOf(ctx, id);
  return chains.map((chain) => {
    const dir = layerDir(ctx.root, chain);
    try {
      Deno.statSync(dir);
    } catch {
      throw new Error(
        `Layer ${chain} of image ${
          short(id)
        } is missing from the store ("${dir}"): pull the image again`,
      );
    }
    return dir;
  });
}

/**
 * Tries to delete an unused layer: only if no process holds its lease (the
 * exclusive lock is taken without waiting). Returns bytes freed, or -1.
 */
export function collectLayer(ctx: StoreContext, chain: string): number {
  ctx.dropLease(layerLeaseName(chain));
  const lock = tryLock(ctx.root, layerLeaseName(chain));
  if (lock === null) return -1;
  try {
    return deleteLayer(ctx, chain);
  } finally {
    lock.close();
  }
}

/** Tries to delete a blob no manifest needs, unless a process holds its lease. Returns bytes freed, or -1. */
export function collectBlob(ctx: StoreContext, digest: string): number {
  ctx.dropLease(blobLeaseName(digest));
  const lock = tryLock(ctx.root, blobLeaseName(digest));
  if (lock === null) return -1;
  try {
    const used = ctx.db.prepare("SELECT 1 AS ok FROM manifest_blobs WHERE blob_digest = ? LIMIT 1")
      .get(digest);
    return used === undefined ? deleteBlob(ctx, digest) : -1;
  } finally {
    lock.close();
  }
}

// Deletes an image's rows (cascading to tags, manifests, layer links) and
// returns the layers and blobs nothing else uses any more. Runs inside the
// caller's transaction.
function deleteImageRows(ctx: StoreContext, id: string): { chains: string[]; blobs: string[] } {
  const chains = layersOf(ctx, id);
  const blobs = (ctx.db.prepare(
    `SELECT DISTINCT mb.blob_digest AS d FROM manifest_blobs mb
       JOIN manifests m ON m.digest = mb.manifest_digest WHERE m.image_id = ?`,
  ).all(id) as { d: string }[]).map((r) => r.d);
  const drop = ctx.db.prepare(
    "UPDATE layers SET refcount = MAX(refcount - 1, 0) WHERE chain_id = ?",
  );
  for (const chain of chains) drop.run(chain);
  ctx.db.prepare("DELETE FROM images WHERE id = ?").run(id);
  const stillUsed = ctx.db.prepare(
    "SELECT 1 AS ok FROM image_layers WHERE chain_id = ? LIMIT 1",
  );
  const blobUsed = ctx.db.prepare(
    "SELECT 1 AS ok FROM manifest_blobs WHERE blob_digest = ? LIMIT 1",
  );
  return {
    chains: chains.filter((c) => stillUsed.get(c) === undefined),
    blobs: blobs.filter((b) => blobUsed.get(b) === undefined),
  };
}

function getImage(ctx: StoreContext, id: string): ImageRecord | undefined {
  const row = ctx.db.prepare(
    `SELECT i.id, i.manifest_digest AS manifestDigest, i.created, i.added, i.size, i.config,
       m.media_type AS mediaType
       FROM images i LEFT JOIN manifests m ON m.digest = i.manifest_digest WHERE i.id = ?`,
  ).get(id) as ImageRow | undefined;
  if (row === undefined) return undefined;
  const refs = referencesOf(ctx, id);
  return {
    id: row.id,
    manifestDigest: row.manifestDigest,
    manifestMediaType: row.mediaType ?? "",
    created: row.created ?? undefined,
    added: row.added,
    size: row.size,
    config: JSON.parse(row.config) as ImageConfig,
    tags: refs.filter((r) => !r.includes("@")),
    digests: refs.filter((r) => r.includes("@")),
    layers: layersOf(ctx, id),
  };
}

function layersOf(ctx: StoreContext, id: string): string[] {
  return (ctx.db.prepare(
    "SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY position",
  ).all(id) as { chain_id: string }[]).map((r) => r.chain_id);
}

function referencesOf(ctx: StoreContext, id: string): string[] {
  return (ctx.db.prepare("SELECT reference FROM tags WHERE image_id = ? ORDER BY reference")
    .all(id) as { reference: string }[]).map((r) => r.reference);
}

function containersUsing(ctx: StoreContext, id: string): string[] {
  return liveContainers(ctx, id).map((r) => r.name ?? r.id.slice(0, 12));
}

// The reference row a query names, if it parses as a reference that exists.
function lookupReference(
  ctx: StoreContext,
  query: string,
): { reference: string; imageId: string } | undefined {
  let ref: NormalizedReference;
  try {
    ref = normalizeReference(query);
  } catch {
    return undefined;
  }
  const get = ctx.db.prepare("SELECT image_id FROM tags WHERE reference = ?");
  // name:tag@digest names the digest; the tag is only a label.
  const key = ref.digest !== undefined ? `${ref.name}@${ref.digest}` : ref.tagged;
  const row = get.get(key) as { image_id: string } | undefined;
  return row ? { reference: key, imageId: row.image_id } : undefined;
}

const FULL_ID = /^(?:sha256:)?([a-f0-9]{64})$/;
const ID_PREFIX = /^(?:sha256:)?([a-f0-9]{1,63})$/;

function resolveImageId(ctx: StoreContext, query: string): string | undefined {
  const full = FULL_ID.exec(query);
  if (full) {
    const id = `sha256:${full[1]}`;
    if (ctx.db.prepare("SELECT 1 AS ok FROM images WHERE id = ?").get(id)) return id;
  }
  const byRef = lookupReference(ctx, query);
  if (byRef) return byRef.imageId;
  const prefix = ID_PREFIX.exec(query);
  if (!prefix) return undefined;
  const rows = ctx.db.prepare("SELECT id FROM images WHERE id LIKE ? LIMIT 2")
    .all(`sha256:${prefix[1]}%`) as { id: string }[];
  if (rows.length > 1) {
    throw new ImageError(
      "ambiguous",
      `Image id prefix "${query}" matches several images: give more digits`,
    );
  }
  return rows[0]?.id;
}

interface NormalizedReference {
  name: string;
  tag: string | undefined;
  digest: string | undefined;
  tagged: string;
}

function normalizeReference(input: string): NormalizedReference {
  const ref = parseReference(input);
  return {
    name: ref.name,
    tag: ref.tag,
    digest: ref.digest,
    tagged: `${ref.name}:${ref.tag ?? "latest"}`,
  };
}

function checkDigest(bytes: Uint8Array, digest: string, what: string): void {
  const { algorithm } = parseDigest(digest);
  const actual = digestOf(bytes, algorithm);
  if (actual !== digest) {
    throw new Error(`The ${what} does not match its digest: expected ${digest}, got ${actual}`);
  }
}

function noSuchImage(query: string): ImageError {
  return new ImageError("not-found", `No such image: "${query}"`);
}

function short(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 12);
}

/** Unpacked bytes of each layer of image `id`, bottom first (0 when unknown). */
export function layerSizes(ctx: StoreContext, id: string): number[] {
  const rows = ctx.db.prepare(
    `SELECT l.unpacked_size AS size FROM image_layers il
       LEFT JOIN layers l ON l.chain_id = il.chain_id
       WHERE il.image_id = ? ORDER BY il.position`,
  ).all(id) as { size: number | null }[];
  return rows.map((r) => r.size ?? 0);
}
