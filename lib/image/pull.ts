/**
 * `trun pull`: resolve a reference to one platform's image, download the
 * layers the store does not have yet (a few at a time), hand each verified
 * blob to the store, then have the store unpack the layers and record the
 * image. Progress goes out as events so the CLI can draw Docker-style lines;
 * this module prints nothing.
 *
 * Two trun processes pulling the same image download each blob once: the
 * download runs under the store's per-blob lock, and whoever gets the lock
 * second finds the blob already there.
 */

import type { Descriptor, Platform } from "../oci/manifest.ts";
import { LAYER_MEDIA_TYPES, MEDIA_TYPE_DOCKER_LAYER_FOREIGN } from "../oci/manifest.ts";
import { type ImageReference, parseReference } from "../oci/reference.ts";
import { loadRegistriesConfig, type RegistriesConfig } from "./registries_config.ts";
import {
  RegistryClient,
  type RegistryClientOptions,
  type ResolvedImage,
} from "./registry_client.ts";
import { prewarmDecoder, WORKER_MIN_BYTES } from "../oci/layer_decode.ts";
import { blobLockName } from "../store/mod.ts";

/** A layer as the store wants it for unpacking. */
export interface LayerInfo {
  /** Digest of the compressed blob. */
  digest: string;
  /** Media type (tells gzip, zstd or plain tar). */
  mediaType: string;
  /** Size of the compressed blob. */
  size: number;
}

/** What the store records for a pulled image. */
export interface PulledImage {
  /** The fully qualified reference pulled (`docker.io/library/ubuntu:latest`). */
  reference: string;
  /** Digest of the platform manifest: the image's identity in the registry. */
  manifestDigest: string;
  /** The manifest exactly as served (its digest must keep matching). */
  manifestBytes: Uint8Array;
  /** Its media type. */
  manifestMediaType: string;
  /** Digest of the config: the image ID. */
  configDigest: string;
  /** The config blob. */
  configBytes: Uint8Array;
  /** Layers, base first. */
  layers: LayerInfo[];
  /** Digest of the index the manifest was chosen from, if any (what `docker pull` prints). */
  indexDigest?: string;
}

/** The part of the store a pull uses (`lib/store/mod.ts` provides it). */
export interface PullStore {
  /** True when the blob is complete in the store. */
  hasBlob(digest: string): boolean;
  /**
   * The layer blobs that need no download: already unpacked wherever they
   * sit in `layers` (the store drops a blob once its layer is unpacked).
   */
  unpackedBlobs?(layers: readonly LayerInfo[]): Set<string>;
  /** A stable temporary path next to the blob's final place (downloads and `.partial` files live here). */
  blobTempPath(digest: string): string;
  /** Moves a verified file at `tempPath` into place as `digest` (checking its size). */
  commitBlob(digest: string, tempPath: string, expectedSize?: number): Promise<void> | void;
  /** Runs `fn` holding a cross-process lock called `name`. */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Unpacks layers in order (skipping ready ones); returns their chain IDs. */
  ensureLayers(
    layers: LayerInfo[],
    options?: {
      onProgress?: (p: { digest: string; state: string }) => void;
      squashOwnership?: { uid: number; gid: number };
      /** Keep the compressed blobs after unpacking (more layers of this stack follow). */
      keepBlobs?: boolean;
      /** A layer blob still downloading to `path`, to unpack as it arrives; `done` settles once it is in the store. */
      incoming?: { digest: string; path: string; done: Promise<void> };
    },
  ): Promise<string[]>;
  /** Records the image and its tag. */
  recordImage(image: PulledImage): Promise<unknown> | unknown;
}

/** What a pull reports as it goes. */
export type PullEventType =
  | "resolving"
  | "layer-start"
  | "layer-progress"
  | "layer-done"
  | "layer-exists"
  | "unpacking"
  | "done";

/**
 * A progress event: `digest` names the layer (or, for `done`, the image's
 * manifest). `unpacking` comes once without a digest when unpacking starts,
 * then once per layer that actually needs unpacking, with its digest.
 */
export interface PullEvent {
  /** What happened. */
  type: PullEventType;
  /** The layer's digest; for `done`, the digest to print (index or manifest). */
  digest?: string;
  /** Bytes so far (layer-progress, layer-done). */
  current?: number;
  /** Bytes expected. */
  total?: number;
  /** For `resolving` and `done`: the reference; for `done` with warnings, the warning text. */
  message?: string;
}

/** Options for pullImage(). */
export interface PullOptions {
  /** Where blobs, layers and images go. */
  store: PullStore;
  /** Platform to pull (default: this machine's). */
  platform?: Platform;
  /** Progress callback. */
  onEvent?: (event: PullEvent) => void;
  /** Layers downloaded at the same time (default 3). */
  maxParallel?: number;
  /** Cancels the pull; partial downloads stay for a resume. */
  signal?: AbortSignal;
  /** Registry settings (default: loaded from registries.json). */
  config?: RegistriesConfig;
  /** Extra client options (credentials, retries, timeouts; tests use these). */
  client?: Omit<RegistryClientOptions, "config" | "purpose">;
  /** Give every unpacked file this owner (rootless without subordinate ids). */
  squashOwnership?: { uid: number; gid: number };
}

/** The outcome of a pull. */
export interface PullResult {
  /** The reference pulled. */
  reference: ImageReference;
  /** Digest of the platform manifest. */
  manifestDigest: string;
  /** Digest to show the user (the index's when there was one, as Docker does). */
  digest: string;
  /** The image ID (config digest). */
  configDigest: string;
  /** Chain IDs of the unpacked layers, base first. */
  chainIds: string[];
  /** Blobs actually downloaded (those the store already had are not counted). */
  downloaded: number;
  /** Warnings (e.g. the image is for another platform). */
  warnings: string[];
}

/**
 * Pulls an image into the store: resolve, download what is missing in
 * parallel, verify, unpack, record. A failure stops the other downloads and
 * leaves no partial image behind (partial blobs stay for a resume).
 */
export async function pullImage(
  reference: ImageReference | string,
  options: PullOptions,
): Promise<PullResult> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const { store, onEvent } = options;
  const emit = (e: PullEvent) => onEvent?.(e);
  const config = options.config ?? await loadRegistriesConfig();
  const client = new RegistryClient(ref.registry, {
    ...options.client,
    config,
    purpose: "pull",
  });

  emit({ type: "resolving", message: ref.toString() });
  const image = await client.resolveImage(ref, options.platform, options.signal);
  const layers = image.parsedManifest.layers.map(checkLayer(ref));
  const unpacked = store.unpackedBlobs?.(layers) ?? new Set<string>();
  // The first large layer's decoder starts while its download begins.
  const releaseDecoder = layers.some((l) => l.size >= WORKER_MIN_BYTES && !unpacked.has(l.digest))
    ? prewarmDecoder()
    : () => {};
  try {
    return await fetchAndUnpack(ref, options, client, image, layers, unpacked);
  } finally {
    releaseDecoder();
  }
}

// The rest of pullImage(), once the image is resolved.
async function fetchAndUnpack(
  ref: ImageReference,
  options: PullOptions,
  client: RegistryClient,
  image: ResolvedImage,
  layers: LayerInfo[],
  unpacked: Set<string>,
): Promise<PullResult> {
  const { store, onEvent } = options;
  const emit = (e: PullEvent) => onEvent?.(e);

  // An aborted sibling stops the rest: one broken layer fails the pull fast.
  const ctl = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal;
  let downloaded = 0;
  const unique = [...new Map(layers.map((l) => [l.digest, l])).values()];
  const download = async (layer: LayerInfo) => {
    if (unpacked.has(layer.digest) || store.hasBlob(layer.digest)) {
      emit({ type: "layer-exists", digest: layer.digest, total: layer.size });
      return;
    }
    await store.withLock(blobLockName(layer.digest), async () => {
      // Another process may have fetched it while we waited for the lock.
      if (store.hasBlob(layer.digest)) {
        emit({ type: "layer-exists", digest: layer.digest, total: layer.size });
        return;
      }
      emit({ type: "layer-start", digest: layer.digest, total: layer.size });
      // The store's temporary name is stable, so a killed pull resumes there.
      const temp = store.blobTempPath(layer.digest);
      started.get(layer.digest)!.resolve(temp);
      await client.fetchBlob(ref.repository, layer.digest, temp, {
        partialPath: temp,
        size: layer.size,
        signal,
        onProgress: (current, total) =>
          emit({
            type: "layer-progress",
            digest: layer.digest,
            current,
            ...(total !== undefined ? { total } : {}),
          }),
      });
      await store.commitBlob(layer.digest, temp, layer.size);
      downloaded++;
      emit({ type: "layer-done", digest: layer.digest, current: layer.size, total: layer.size });
    });
  };
  // Each layer is unpacked as soon as the layers below it are, while it
  // and the later ones still download: the unpacker reads a layer's file as
  // it grows, and commits the layer once the blob is in the store, verified.
  // Bottom-up order stays.
  const fetched = new Map(unique.map((l) => {
    const d = Promise.withResolvers<void>();
    d.promise.catch(() => {}); // awaited later, or never when an earlier layer failed
    return [l.digest, d];
  }));
  // Resolved with the temporary file's path when a layer's download begins.
  const started = new Map(unique.map((l) => [l.digest, Promise.withResolvers<string>()]));
  let firstError: { error: unknown } | undefined;
  const failed = (error: unknown) => {
    firstError ??= { error };
    ctl.abort(error);
  };
  const downloads = runBounded(
    unique,
    Math.max(1, options.maxParallel ?? 3),
    async (layer) => {
      try {
        await download(layer);
        fetched.get(layer.digest)!.resolve();
      } catch (err) {
        failed(err);
        throw err;
      }
    },
    ctl,
  ).finally(() => {
    // Downloads never started (a sibling failed) must not keep unpacking waiting.
    for (const d of fetched.values()) d.reject(firstError?.error ?? new Error("download stopped"));
  });
  let chainIds: string[] = [];
  const unpacking = (async () => {
    emit({ type: "unpacking" });
    for (let i = 0; i < layers.length; i++) {
      const digest = layers[i]!.digest;
      const done = fetched.get(digest)!.promise;
      const temp = await Promise.race([done.then(() => undefined), started.get(digest)!.promise]);
      // Blobs stay until the last call: a blob can come back higher in the stack.
      const last = i === layers.length - 1;
      chainIds = await store.ensureLayers(layers.slice(0, i + 1), {
        ...(temp !== undefined ? { incoming: { digest, path: temp, done } } : {}),
        onProgress: (p) => {
          if (p.state === "unpacking") emit({ type: "unpacking", digest: p.digest });
        },
        ...(last ? {} : { keepBlobs: true }),
        ...(options.squashOwnership ? { squashOwnership: options.squashOwnership } : {}),
      });
    }
  })().catch(failed);
  await Promise.allSettled([downloads, unpacking]);
  if (firstError !== undefined) throw firstError.error;
  await store.recordImage({
    reference: ref.toString(),
    manifestDigest: image.manifest.digest,
    manifestBytes: image.manifest.bytes,
    manifestMediaType: image.manifest.mediaType,
    configDigest: image.config.digest,
    configBytes: image.config.bytes,
    layers,
    ...(image.indexDigest !== undefined ? { indexDigest: image.indexDigest } : {}),
  });
  const digest = image.indexDigest ?? image.manifest.digest;
  emit({ type: "done", digest, message: ref.toString() });
  return {
    reference: ref,
    manifestDigest: image.manifest.digest,
    digest,
    configDigest: image.config.digest,
    chainIds,
    downloaded,
    warnings: image.warnings,
  };
}

function checkLayer(ref: ImageReference): (d: Descriptor) => LayerInfo {
  return (d) => {
    if (d.mediaType === MEDIA_TYPE_DOCKER_LAYER_FOREIGN) {
      throw new Error(
        `Image "${ref.familiar}" has a foreign (Windows) layer "${d.digest}": trun runs Linux images only`,
      );
    }
    if (!LAYER_MEDIA_TYPES.includes(d.mediaType)) {
      throw new Error(
        `Image "${ref.familiar}" has layer "${d.digest}" of media type "${d.mediaType}", which trun cannot unpack`,
      );
    }
    return { digest: d.digest, mediaType: d.mediaType, size: d.size };
  };
}

/**
 * Runs `work` over `items` with at most `limit` at once. The first failure
 * aborts `ctl` (so running downloads stop) and is the error thrown, after
 * every started task has settled: nothing keeps writing once we return.
 */
export async function runBounded<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
  ctl: AbortController,
): Promise<void> {
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (e) {
        if (!failed) {
          failed = true;
          firstError = e;
          ctl.abort(e);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
}
