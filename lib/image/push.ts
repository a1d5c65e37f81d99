/**
 * `trun push`: upload a stored image to its registry. Blobs the registry
 * already has are skipped (HEAD), the others go up a few at a time straight
 * from the store's files, then the manifest is put under the tag — last, so
 * a tag never points at an image whose blobs are missing. The manifest is
 * sent as the exact bytes stored, so its digest is unchanged.
 */

import { createHash } from "node:crypto";
import { parseManifest } from "../oci/manifest.ts";
import { runBounded } from "./pull.ts";
import { type ImageReference, parseReference } from "../oci/reference.ts";
import { loadRegistriesConfig, type RegistriesConfig } from "./registries_config.ts";
import { RegistryClient, type RegistryClientOptions } from "./registry_client.ts";

/** The part of the store a push uses. */
export interface PushStore {
  /** The image a reference (or id) names, if any. */
  findImage(query: string): { id: string; manifestDigest: string } | undefined;
  /** The stored bytes and media type of a manifest, if the store has it. */
  getManifest(digest: string): { mediaType: string; bytes: Uint8Array } | undefined;
  /** True when the blob is complete in the store. */
  hasBlob(digest: string): boolean;
  /** Final path of a stored blob. */
  blobPath(digest: string): string;
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
  const name = ref.familiar;

  const image = store.findImage(ref.toString());
  if (image === undefined) {
    throw new Error(
      `No image "${name}" in the store: pull it, or tag a local image with that name first`,
    );
  }
  const manifest = store.getManifest(image.manifestDigest);
  if (manifest === undefined) {
    throw new Error(
      `The manifest "${image.manifestDigest}" of "${name}" is not in the store: pull the image again`,
    );
  }
  const stored = `sha256:${createHash("sha256").update(manifest.bytes).digest("hex")}`;
  if (stored !== image.manifestDigest) {
    throw new Error(
      `The stored manifest of "${name}" hashes to "${stored}", not "${image.manifestDigest}": the store is damaged; pull the image again`,
    );
  }
  const parsed = parseManifest(manifest.bytes, manifest.mediaType, name);
  if (parsed.kind !== "manifest") {
    throw new Error(`The stored manifest of "${name}" is an index: trun pushes single images`);
  }
  const { config, layers } = parsed.manifest;
  const blobs = [...new Map([...layers, config].map((d) => [d.digest, d])).values()];
  for (const b of blobs) {
    if (!store.hasBlob(b.digest)) {
      throw new Error(
        `Cannot push "${name}": its blob "${b.digest}" is not in the store; pull the image again`,
      );
    }
  }

  const settings = options.config ?? await loadRegistriesConfig();
  const client = new RegistryClient(ref.registry, {
    ...options.client,
    config: settings,
    purpose: "push",
  });
  await client.ping(options.signal);

  const ctl = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal;
  let uploaded = 0;
  await runBounded(blobs, Math.max(1, options.maxParallel ?? 3), async (blob) => {
    if (await client.blobExists(ref.repository, blob.digest, signal)) {
      emit({ type: "layer-exists", digest: blob.digest, total: blob.size });
      return;
    }
    emit({ type: "layer-start", digest: blob.digest, total: blob.size });
    const open = () =>
      countingStream(
        store.blobPath(blob.digest),
        (current) =>
          emit({ type: "layer-progress", digest: blob.digest, current, total: blob.size }),
      );
    await client.pushBlob(ref.repository, blob.digest, blob.size, open, { signal });
    uploaded++;
    emit({ type: "layer-done", digest: blob.digest, current: blob.size, total: blob.size });
  }, ctl);

  const digest = await client.pushManifest(
    ref.repository,
    ref.digest ?? ref.tag ?? "latest",
    parsed.mediaType,
    manifest.bytes,
    options.signal,
  );
  emit({ type: "done", digest });
  return { digest, size: manifest.bytes.length, uploaded };
}

/** A file's bytes as a stream, reporting the bytes read so far. */
function countingStream(
  path: string,
  onProgress: (current: number) => void,
): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (reader === undefined) {
        const file = await Deno.open(path, { read: true });
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
