/**
 * Images made on this machine rather than pulled: `trun commit` (a
 * container's writable layer on top of its image), `trun import` (a root
 * file system tar as a one-layer image), and the steps of `trun build`.
 * The new layer is stored as an uncompressed tar blob (so its digest is its
 * diff_id, as Podman keeps local layers) and unpacked like a pulled one;
 * the image gets an OCI manifest and a config whose history says how it
 * was made.
 */
import type { Store } from "../store/mod.ts";
import type { ImageRecord, LayerDescriptor } from "../store/mod.ts";
import {
  hostPlatform,
  type ImageConfig,
  type ImageRuntimeConfig,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_MANIFEST,
  parseManifest,
  type Platform,
} from "../oci/manifest.ts";
import { digestOf } from "../store/blobs.ts";

/** One line of an image's history. */
export interface HistoryEntry {
  /** What made the layer (`/bin/sh -c make`, `COPY file:… in /`). */
  createdBy: string;
  /** `-m`. */
  comment?: string;
  /** `-a`. */
  author?: string;
  /** True when the step changed only the config. */
  emptyLayer?: boolean;
}

/** What {@link recordLocalImage} makes. */
export interface LocalImageInput {
  /** The image it builds on (an id); none for `import` and `FROM scratch`. */
  parent?: ImageRecord;
  /** The new layer as an uncompressed tar; none for a config-only step. */
  layer?: AsyncIterable<Uint8Array>;
  /** The runtime config of the new image. */
  runtimeConfig: ImageRuntimeConfig;
  /** Its history line. */
  history: HistoryEntry;
  /** The image's author. */
  author?: string;
  /** The platform, when not the parent's (or, without a parent, this host's). */
  platform?: Platform;
  /** The creation time; now by default. */
  created?: Date;
}

/** OCI's name for a Docker layer media type (an OCI manifest may not list Docker's). */
export function ociLayerMediaType(mediaType: string): string {
  if (mediaType === MEDIA_TYPE_DOCKER_LAYER_GZIP) return MEDIA_TYPE_OCI_LAYER_GZIP;
  if (mediaType === "application/vnd.docker.image.rootfs.diff.tar") return MEDIA_TYPE_OCI_LAYER;
  if (mediaType === MEDIA_TYPE_DOCKER_LAYER_FOREIGN) {
    return "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
  }
  return mediaType;
}

/** The layers of `image` as its stored manifest lists them. */
export function imageLayers(store: Store, image: ImageRecord): LayerDescriptor[] {
  const stored = store.manifest(image.id);
  const parsed = parseManifest(stored.bytes, stored.mediaType, image.id);
  if (parsed.kind !== "manifest") throw new Error(`Image ${image.id} has no image manifest`);
  return parsed.manifest.layers.map((l) => ({
    digest: l.digest,
    mediaType: l.mediaType,
    size: l.size,
  }));
}

/**
 * The config of the new image: the parent's (or an empty one) with the new
 * runtime config, one more diff_id (when there is a layer) and one more
 * history line. Pure.
 */
export function localImageConfig(
  parent: ImageConfig | undefined,
  input: Omit<LocalImageInput, "parent" | "layer">,
  diffId: string | undefined,
): ImageConfig {
  const created = (input.created ?? new Date()).toISOString();
  const platform = input.platform ??
    (parent ? { os: parent.os, architecture: parent.architecture } : hostPlatform());
  const variant = input.platform ? input.platform.variant : parent?.variant;
  const h = input.history;
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(variant ? { variant } : {}),
    created,
    ...(input.author ? { author: input.author } : {}),
    config: input.runtimeConfig,
    rootfs: {
      type: "layers",
      diff_ids: [...(parent?.rootfs.diff_ids ?? []), ...(diffId ? [diffId] : [])],
    },
    history: [
      ...(parent?.history ?? []),
      {
        created,
        created_by: h.createdBy,
        ...(h.comment ? { comment: h.comment } : {}),
        ...(h.author ? { author: h.author } : {}),
        ...(diffId === undefined ? { empty_layer: true } : {}),
      },
    ],
  };
}

/**
 * Stores the new layer, unpacks it, and records the image (untagged; the
 * caller tags it). Returns its record.
 */
export async function recordLocalImage(
  store: Store,
  input: LocalImageInput,
): Promise<ImageRecord> {
  const layers = input.parent
    ? imageLayers(store, input.parent).map((l) => ({
      ...l,
      mediaType: ociLayerMediaType(l.mediaType),
    }))
    : [];
  let diffId: string | undefined;
  if (input.layer) {
    const { digest, size } = await store.importBlob(input.layer);
    diffId = digest;
    layers.push({ digest, mediaType: MEDIA_TYPE_OCI_LAYER, size });
  }
  await store.ensureLayers(layers);
  const config = localImageConfig(input.parent?.config, input, diffId);
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const configDigest = digestOf(configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers,
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
  return store.recordImage({
    manifestDigest: digestOf(manifestBytes),
    manifestBytes,
    manifestMediaType: MEDIA_TYPE_OCI_MANIFEST,
    configDigest,
    configBytes,
    layers,
  });
}
