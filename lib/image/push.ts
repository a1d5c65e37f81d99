/**
 * `trun push`: upload a stored image to its registry. Blobs the registry
 * already has are skipped (HEAD), the others go up a few at a time straight
 * from the store's files, then the manifest is put under the tag — last, so
 * a tag never points at an image whose blobs are missing. The manifest is
 * sent as the exact bytes stored, so its digest is unchanged.
 */

import { createHash } from "node:crypto";
import type { ImageRecord, LayerInfo } from "./pull.ts";
import { runBounded } from "./pull.ts";
import { type ImageReference, parseReference } from "./reference.ts";
import { loadRegistriesConfig, type RegistriesConfig } from "./registries_config.ts";
import { RegistryClient, type RegistryClientOptions } from "./registry_client.ts";

/** The part of the store a push uses. */
export interface PushStore {
  /** True when the blob is complete in the store. */
  hasBlob(digest: string): boolean;
  /** Final path of a stored blob. */
  blobPath(digest: string): string;
  /** The stored image for a fully qualified reference, if any. */
  getImage(
    reference: string,
  ):
    | Promise<Omit<ImageRecord, "reference"> | undefined>
    | Omit<ImageRecord, "reference">
    | undefined;
}

/** What a push reports as it goes (same shape as pull events). */
export interface PushEvent {
  /** What happened. */
  type: "layer-start" | "layer-progress" | "layer-done" | "layer-exists" | "done";
  /** The blob's digest; for `done`, the manifest's. */
  digest?: string;
  /** Bytes sent so far. */
  current?: number;
  /** Bytes to send. */
  total?: number;
}

/** Options for pushImage(). */
export interface PushOptions {
  /** Where the image's blobs and manifest come from. */
  store: PushStore;
  /** Progress callback. */
  onEvent?: (event: PushEvent) => void;
  /** Blobs uploaded at the same time (default 3). */
  maxParallel?: number;
  /** Cancels the push. */
  signal?: AbortSignal;
  /** Registry settings (default: loaded from registries.json). */
  config?: RegistriesConfig;
  /** Extra client options (credentials, retries, timeouts). */
  client?: Omit<RegistryClientOptions, "config" | "purpose">;
}

/** The outcome of a push. */
export interface PushResult {
  /** Digest of the pushed manifest. */
  digest: string;
  /** Size of the manifest (Docker prints it). */
  size: number;
  /** Blobs uploaded (the rest were already there). */
  uploaded: number;
}

/** Pushes the stored image `reference` to its registry. */
export async function pushImage(
  reference: ImageReference | string,
  options: PushOptions,
): Promise<PushResult> {
  const ref = typeof reference === "string" ? parseReference(reference) : reference;
  const { store, onEvent } = options;
  const emit = (e: PushEvent) => onEvent?.(e);
  const image = await store.getImage(ref.toString());
  if (image === undefined) {
    throw new Error(
      `No image "${ref.familiar}" in the store: pull it or tag a local image with that name first`,
    );
  }
  const stored = `sha256:${createHash("sha256").update(image.manifestBytes).digest("hex")}`;
  if (stored !== image.manifestDigest) {
    throw new Error(
      `The stored manifest of "${ref.familiar}" hashes to "${stored}", not the recorded "${image.manifestDigest}": the store is damaged; pull the image again`,
    );
  }
  const config = options.config ?? await loadRegistriesConfig();
  const client = new RegistryClient(ref.registry, { ...options.client, config, purpose: "push" });
  await client.ping(options.signal);

  const ctl = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal;
  let uploaded = 0;
  const blobs: (LayerInfo & { bytes?: Uint8Array })[] = [
    ...new Map(image.layers.map((l) => [l.digest, l])).values(),
    {
      digest: image.configDigest,
      mediaType: "config",
      size: image.configBytes.length,
      bytes: image.configBytes,
    },
  ];
  for (const b of blobs) {
    if (b.bytes === undefined && !store.hasBlob(b.digest)) {
      throw new Error(
        `Cannot push "${ref.familiar}": its layer "${b.digest}" is not in the store (only unpacked); pull the image again`,
      );
    }
  }
  const pushOne = async (blob: LayerInfo & { bytes?: Uint8Array }) => {
    if (await client.blobExists(ref.repository, blob.digest, signal)) {
      emit({ type: "layer-exists", digest: blob.digest, total: blob.size });
      return;
    }
    emit({ type: "layer-start", digest: blob.digest, total: blob.size });
    const open = () => {
      if (blob.bytes !== undefined) return blob.bytes.slice();
      return countingStream(
        store.blobPath(blob.digest),
        (current) =>
          emit({ type: "layer-progress", digest: blob.digest, current, total: blob.size }),
      );
    };
    await client.pushBlob(ref.repository, blob.digest, blob.size, open, { signal });
    uploaded++;
    emit({ type: "layer-done", digest: blob.digest, current: blob.size, total: blob.size });
  };
  await runBounded(blobs, Math.max(1, options.maxParallel ?? 3), pushOne, ctl);

  const digest = await client.pushManifest(
    ref.repository,
    ref.digest ?? ref.tag ?? "latest",
    image.manifestMediaType,
    image.manifestBytes,
    options.signal,
  );
  emit({ type: "done", digest });
  return { digest, size: image.manifestBytes.length, uploaded };
}

/** A file's bytes as a stream, reporting the bytes read so far. */
function countingStream(
  path: string,
  onProgress: (current: number) => void,
): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (reader === undefined) {
        file = await Deno.open(path, { read: true });
        reader = file.readable.getReader();
      }
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      sent += value.length;
      onProgress(sent);
      controller.enqueue(value);
    },
    async cancel(reason) {
      await reader?.cancel(reason);
    },
  });
}
