/**
 * The documents a registry serves for an image — Docker schema 2 manifests
 * and manifest lists, OCI image manifests and indexes, and image configs —
 * as TypeScript types, with parsers that check the fields trun relies on, and
 * platform parsing and selection (the `--platform os/arch[/variant]` rules of
 * containerd's `platforms` package, which Docker uses). Follows the OCI
 * image-spec v1.1 and Docker's Image Manifest V2, Schema 2.
 */

import { isValidDigest } from "./reference.ts";

/** Docker schema 2 image manifest. */
export const MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list (multi-platform). */
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST =
  "application/vnd.docker.distribution.manifest.list.v2+json";
/** OCI image manifest. */
export const MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index (multi-platform). */
export const MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** Docker image config. */
export const MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
/** OCI image config. */
export const MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** Docker gzip layer. */
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/** Docker foreign (Windows base) layer, fetched from URLs outside the registry. */
export const MEDIA_TYPE_DOCKER_LAYER_FOREIGN =
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/** OCI uncompressed layer. */
export const MEDIA_TYPE_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
/** OCI gzip layer. */
export const MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
/** OCI zstd layer. */
export const MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
/** The obsolete signed schema 1 manifest, which trun refuses with a clear message. */
export const MEDIA_TYPE_DOCKER_SCHEMA1 =
  "application/vnd.docker.distribution.manifest.v1+prettyjws";

/** The four manifest types trun accepts, most specific first: the `Accept` header of a manifest request. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST,
];

/** Layer media types trun can unpack. */
export const LAYER_MEDIA_TYPES: readonly string[] = [
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/** An OS and CPU pair an image is built for (OCI image-spec `platform`). */
export interface Platform {
  /** Operating system, e.g. `linux`. */
  os: string;
  /** CPU architecture in Go's spelling, e.g. `amd64`, `arm64`. */
  architecture: string;
  /** CPU variant, e.g. `v7` for arm or `v8` for arm64. */
  variant?: string;
  /** OS version (Windows images). */
  "os.version"?: string;
  /** Required OS features (Windows images). */
  "os.features"?: string[];
}

/** A pointer to content by digest (OCI image-spec `descriptor`). */
export interface Descriptor {
  /** Media type of the referenced content. */
  mediaType: string;
  /** Digest of the referenced bytes. */
  digest: string;
  /** Size of the referenced bytes. */
  size: number;
  /** Other places the content can be fetched from (foreign layers). */
  urls?: string[];
  /** Free-form metadata. */
  annotations?: Record<string, string>;
  /** For index entries: the platform this manifest is for. */
  platform?: Platform;
}

/** A single-platform image manifest (Docker schema 2 or OCI). */
export interface ImageManifest {
  /** Always 2. */
  schemaVersion: 2;
  /** Media type of this document, when it says so. */
  mediaType?: string;
  /** The image config blob. */
  config: Descriptor;
  /** Layers, base first. */
  layers: Descriptor[];
  /** Free-form metadata. */
  annotations?: Record<string, string>;
}

/** A multi-platform index (Docker manifest list or OCI index). */
export interface ImageIndex {
  /** Always 2. */
  schemaVersion: 2;
  /** Media type of this document, when it says so. */
  mediaType?: string;
  /** One entry per platform (and possibly attestations). */
  manifests: Descriptor[];
  /** Free-form metadata. */
  annotations?: Record<string, string>;
}

/** The runtime defaults an image carries (OCI image-spec config `config`). */
export interface ImageRuntimeConfig {
  /** `user[:group]` to run as. */
  User?: string;
  /** Ports as `80/tcp` keys. */
  ExposedPorts?: Record<string, unknown>;
  /** `NAME=value` entries. */
  Env?: string[];
  /** The program and its first arguments. */
  Entrypoint?: string[] | null;
  /** Default arguments (or command, without an entrypoint). */
  Cmd?: string[] | null;
  /** Paths to make volumes, as keys. */
  Volumes?: Record<string, unknown>;
  /** Working directory. */
  WorkingDir?: string;
  /** Image labels. */
  Labels?: Record<string, string>;
  /** Signal that stops the container, e.g. `SIGTERM`. */
  StopSignal?: string;
  /** Docker's health check (`HEALTHCHECK`), kept for engines that run it. */
  Healthcheck?: HealthConfig;
  /** Instructions a build FROM this image runs first (Docker's `ONBUILD`). */
  OnBuild?: string[] | null;
  /** The shell of shell-form instructions (Docker's `SHELL`). */
  Shell?: string[];
}

/** Docker's health check settings; durations in nanoseconds. */
export interface HealthConfig {
  /** `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "command"]`. */
  Test: string[];
  /** Time between checks. */
  Interval?: number;
  /** Time a check may take. */
  Timeout?: number;
  /** Grace time after the start. */
  StartPeriod?: number;
  /** Time between checks during the grace time. */
  StartInterval?: number;
  /** Failures in a row that make the container unhealthy. */
  Retries?: number;
}

/** An image config (Docker and OCI share this shape). */
export interface ImageConfig {
  /** CPU architecture. */
  architecture: string;
  /** Operating system. */
  os: string;
  /** CPU variant. */
  variant?: string;
  /** Creation time (RFC 3339). */
  created?: string;
  /** Author. */
  author?: string;
  /** Runtime defaults. */
  config?: ImageRuntimeConfig;
  /** Uncompressed layer digests, base first. */
  rootfs: { type: string; "diff_ids": string[] };
  /** Build history. */
  history?: {
    created?: string;
    "created_by"?: string;
    comment?: string;
    "empty_layer"?: boolean;
    author?: string;
  }[];
}

/** A parsed manifest document: either an index to choose from or an image manifest. */
export type ParsedManifest =
  | { kind: "index"; mediaType: string; index: ImageIndex }
  | { kind: "manifest"; mediaType: string; manifest: ImageManifest };

/** True for the two multi-platform types. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_OCI_INDEX || mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST;
}

/** True for the two single-platform manifest types. */
export function isManifestMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_OCI_MANIFEST || mediaType === MEDIA_TYPE_DOCKER_MANIFEST;
}

/**
 * Parses manifest bytes. `contentType` is what the registry said; some
 * registries send a generic JSON type, so the document's own `mediaType`
 * field, and then its shape, decide in that case. `what` names the document
 * in messages (e.g. the reference).
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType: string,
  what: string,
): ParsedManifest {
  const doc = parseJsonObject(bytes, `manifest of "${what}"`);
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  const headerType = contentType.split(";")[0]?.trim() ?? "";
  let mediaType = MANIFEST_MEDIA_TYPES.includes(headerType) ? headerType : declared ?? "";
  if (
    headerType === MEDIA_TYPE_DOCKER_SCHEMA1 || mediaType === MEDIA_TYPE_DOCKER_SCHEMA1 ||
    doc.schemaVersion === 1
  ) {
    throw new Error(
      `Image "${what}" uses the obsolete Docker schema 1 manifest, which trun does not support: ask its publisher to push it again with a current tool`,
    );
  }
  if (doc.schemaVersion !== 2) {
    throw new Error(
      `Manifest of "${what}" has schemaVersion ${
        JSON.stringify(doc.schemaVersion)
      }: only version 2 is supported`,
    );
  }
  if (mediaType === "") {
    if (Array.isArray(doc.manifests)) mediaType = MEDIA_TYPE_OCI_INDEX;
    else if (doc.config !== undefined) mediaType = MEDIA_TYPE_OCI_MANIFEST;
  }
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) {
      throw new Error(`Index of "${what}" has no "manifests" list`);
    }
    const manifests = doc.manifests.map((d, i) => checkDescriptor(d, `${what} manifests[${i}]`));
    return { kind: "index", mediaType, index: { ...doc, schemaVersion: 2, manifests } };
  }
  if (isManifestMediaType(mediaType)) {
    const config = checkDescriptor(doc.config, `${what} config`);
    if (!Array.isArray(doc.layers)) throw new Error(`Manifest of "${what}" has no "layers" list`);
    const layers = doc.layers.map((d, i) => checkDescriptor(d, `${what} layers[${i}]`));
    return { kind: "manifest", mediaType, manifest: { ...doc, schemaVersion: 2, config, layers } };
  }
  throw new Error(
    `Manifest of "${what}" has media type "${
      mediaType || headerType
    }", which is not an image: trun pulls ${MANIFEST_MEDIA_TYPES.join(", ")}`,
  );
}

/** Parses and checks an image config blob; `what` names it in messages. */
export function parseImageConfig(bytes: Uint8Array, what: string): ImageConfig {
  const doc = parseJsonObject(bytes, `image config of "${what}"`);
  const rootfs = doc.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (
    typeof rootfs !== "object" || rootfs === null || !Array.isArray(rootfs.diff_ids) ||
    !rootfs.diff_ids.every((d) => typeof d === "string" && isValidDigest(d))
  ) {
    throw new Error(`Image config of "${what}" has no valid "rootfs.diff_ids" list`);
  }
  if (typeof doc.os !== "string" || typeof doc.architecture !== "string") {
    throw new Error(`Image config of "${what}" does not say its "os" and "architecture"`);
  }
  return doc as unknown as ImageConfig;
}

function parseJsonObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`The ${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`The ${what} is not a JSON object`);
  }
  return doc as Record<string, unknown>;
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (typeof o !== "object" || o === null) throw new Error(`Descriptor ${where} is not an object`);
  if (typeof o.digest !== "string" || !isValidDigest(o.digest)) {
    throw new Error(`Descriptor ${where} has an invalid digest ${JSON.stringify(o.digest)}`);
  }
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new Error(`Descriptor ${where} has an invalid size ${JSON.stringify(o.size)}`);
  }
  if (typeof o.mediaType !== "string") {
    throw new Error(`Descriptor ${where} has no media type`);
  }
  return o as Descriptor;
}

// Go's architecture names for what other tools and uname call them.
const ARCH_ALIASES: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  "x86_64": { architecture: "amd64" },
  "x86-64": { architecture: "amd64" },
  amd64: { architecture: "amd64" },
  aarch64: { architecture: "arm64" },
  arm64: { architecture: "arm64" },
  armhf: { architecture: "arm", variant: "v7" },
  armel: { architecture: "arm", variant: "v6" },
  arm: { architecture: "arm" },
  i386: { architecture: "386" },
  i686: { architecture: "386" },
  "386": { architecture: "386" },
  riscv64: { architecture: "riscv64" },
  ppc64le: { architecture: "ppc64le" },
  s390x: { architecture: "s390x" },
  mips64le: { architecture: "mips64le" },
  loong64: { architecture: "loong64" },
};

const KNOWN_OS = new Set(["linux", "windows", "darwin", "freebsd"]);

/** Normalises a platform the way containerd does: `arm` defaults to v7, arm64's `8` is `v8`. */
export function normalizePlatform(p: Platform): Platform {
  const alias = ARCH_ALIASES[p.architecture.toLowerCase()];
  const architecture = alias?.architecture ?? p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || alias?.variant;
  if (variant !== undefined && /^\d+$/.test(variant)) variant = `v${variant}`;
  if (architecture === "arm" && variant === undefined) variant = "v7";
  if (architecture === "arm64" && variant === undefined) variant = "v8";
  return { os: p.os.toLowerCase(), architecture, ...(variant !== undefined ? { variant } : {}) };
}

/** Parses `os/arch[/variant]` (or just `arch`, meaning Linux) as `--platform` takes it. */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().split("/");
  const bad = (why: string): never => {
    throw new Error(
      `Invalid platform "${spec}": ${why}; use "os/arch[/variant]", e.g. "linux/arm64"`,
    );
  };
  if (parts.length > 3 || parts.some((p) => p === "")) bad("it has empty or extra parts");
  if (parts.length === 1) {
    const only = parts[0]!.toLowerCase();
    if (KNOWN_OS.has(only)) return normalizePlatform({ os: only, architecture: hostArch() });
    if (ARCH_ALIASES[only] === undefined) bad(`"${only}" is not a known architecture`);
    return normalizePlatform({ os: "linux", architecture: only });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  if (!/^[a-z0-9_]+$/i.test(os)) bad(`"${os}" is not an operating system name`);
  if (!/^[a-z0-9_-]+$/i.test(architecture)) bad(`"${architecture}" is not an architecture name`);
  return normalizePlatform({
    os,
    architecture,
    ...(variant !== undefined ? { variant } : {}),
  });
}

/** `os/arch[/variant]`, the form `--platform` takes and messages show. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join("/");
}

function hostArch(): string {
  return ARCH_ALIASES[Deno.build.arch]?.architecture ?? Deno.build.arch;
}

/** The platform of the machine trun runs on (Deno's `x86_64` is `amd64`, `aarch64` is `arm64/v8`). */
export function hostPlatform(): Platform {
  return normalizePlatform({ os: Deno.build.os, architecture: Deno.build.arch });
}

// Variants a CPU of the given variant can run, best first: an ARMv8 core runs
// v7 and v6 code (containerd's `platforms.Only`), a v7 core runs v6 and v5.
const COMPATIBLE_VARIANTS: Readonly<Record<string, Record<string, string[]>>> = {
  arm64: { v8: ["v8"], "v8.1": ["v8.1", "v8"], v9: ["v9", "v8.1", "v8"] },
  arm: { v8: ["v8", "v7", "v6", "v5"], v7: ["v7", "v6", "v5"], v6: ["v6", "v5"], v5: ["v5"] },
};

/**
 * How well a manifest's platform fits the wanted one: 0 is an exact fit,
 * higher numbers are worse but compatible fits, undefined means it cannot run.
 */
export function platformRank(candidate: Platform, wanted: Platform): number | undefined {
  const c = normalizePlatform(candidate);
  const w = normalizePlatform(wanted);
  if (c.os !== w.os || c.architecture !== w.architecture) return undefined;
  if (w.variant === undefined) return c.variant === undefined ? 0 : 1;
  if (c.variant === undefined) return w.architecture === "arm64" ? 0 : 10;
  const order = COMPATIBLE_VARIANTS[w.architecture]?.[w.variant] ?? [w.variant];
  const i = order.indexOf(c.variant);
  return i < 0 ? undefined : i;
}

/**
 * Picks the index entry for a platform: the best compatible fit, the first
 * one on ties (publishers list their preferred manifest first). Throws a
 * message listing what the image offers when nothing fits.
 */
export function selectManifest(index: ImageIndex, wanted: Platform, what: string): Descriptor {
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  for (const d of index.manifests) {
    if (d.platform === undefined || !isManifestMediaType(d.mediaType)) continue;
    const rank = platformRank(d.platform, wanted);
    if (rank !== undefined && rank < bestRank) {
      best = d;
      bestRank = rank;
    }
  }
  if (best !== undefined) return best;
  const offered = index.manifests
    .filter((d) => d.platform !== undefined && d.platform.os !== "unknown")
    .map((d) => formatPlatform(normalizePlatform(d.platform!)));
  throw new Error(
    `No image for platform "${formatPlatform(normalizePlatform(wanted))}" in "${what}": ${
      offered.length > 0 ? `it offers ${[...new Set(offered)].join(", ")}` : "it lists no platforms"
    }; pick one with --platform`,
  );
}
