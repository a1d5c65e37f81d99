/**
 * The fixture images the integration tests and benchmarks pull: built from
 * Debian's `busybox-static` (and, for the big image, host libraries) into
 * one OCI image layout, then optionally pushed to a registry.
 *
 * ```
 * deno run -A scripts/fixtures.ts --registry 127.0.0.1:5000 [--out DIR]
 * ```
 *
 * Images (all under `trun-fixtures/`): `busybox:latest` (OCI),
 * `busybox:docker` (Docker schema2 media types), `layered:latest`
 * (whiteouts and an opaque directory), `multiarch:latest` (an index for
 * amd64, arm64 and arm/v7), `zstd:latest` (zstd layers), `owners:latest`
 * (several owners, set-id bits, symlink and hard link) and `big:latest`
 * (~80 MB, for the pull benchmark).
 *
 * The layers are written by a small ustar/PAX writer below rather than an
 * npm tar packer: deno.json has no tar dependency yet, we only need to
 * write (not parse) well-formed archives, and keeping the fixtures free of
 * the product's tar library means a bug there cannot hide in both. Output
 * is deterministic: fixed mtimes, sorted inputs, compact JSON.
 */

import { createHash } from "node:crypto";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { busyboxTree, type TreeEntry } from "../tests/_harness/rootfs.ts";
import { concat } from "../lib/util/bytes.ts";
import {
  type Descriptor,
  type PushedImage,
  pushLayout,
  REF_NAME_ANNOTATION,
} from "../tests/_harness/oci_push.ts";

/** Modification time of every file in the fixture layers (2023-11-14T22:13:20Z). */
export const FIXTURE_MTIME = 1_700_000_000;
const CREATED = new Date(FIXTURE_MTIME * 1000).toISOString().replace(".000Z", "Z");

/** Media types the fixtures use. */
export const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** One image of the fixture layout. */
export interface FixtureImage {
  /** "trun-fixtures/busybox:latest". */
  ref: string;
  /** Media type of the top manifest or index. */
  mediaType: string;
  /** Digest of the top manifest or index. */
  digest: string;
  /** Size in bytes of the top manifest or index. */
  size: number;
}

/** The result of `buildFixtures()`. */
export interface FixtureSet {
  /** The OCI image layout directory (`oci-layout`, `index.json`, `blobs/`). */
  layoutDir: string;
  /** The tagged images, in build order. */
  images: FixtureImage[];
}

/** Options for `buildFixtures()`. */
export interface BuildOptions {
  /** Build `trun-fixtures/big:latest` too (default true; it takes a few seconds). */
  big?: boolean;
  /** Uncompressed bytes of host files per big layer (default 20 MiB; four layers). */
  bigLayerBytes?: number;
}

// ---------------------------------------------------------------------------
// Tar (POSIX ustar with PAX extended headers for long names)

const BLOCK = 512;
const enc = new TextEncoder();

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as GNU tar and Go's archive/tar write them.
  const s = value.toString(8);
  if (s.length > width - 1) throw new Error(`Tar field overflow: ${value} in ${width} bytes`);
  return s.padStart(width - 1, "0");
}

function putString(buf: Uint8Array, at: number, width: number, s: string): void {
  const bytes = enc.encode(s);
  if (bytes.length > width) throw new Error(`Tar field overflow: "${s}" in ${width} bytes`);
  buf.set(bytes, at);
}

interface Header {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** '0' file, '1' hard link, '2' symlink, '5' directory, 'x' PAX header. */
  type: string;
  linkname: string;
}

function headerBlock(h: Header): Uint8Array {
  const b = new Uint8Array(BLOCK);
  let name = h.name;
  let prefix = "";
  if (enc.encode(name).length > 100) {
    // ustar splits long names at a slash: prefix (155) "/" name (100).
    // The caller guarantees a split exists or has written a PAX header.
    const cut = splitPoint(name);
    if (cut < 0) name = name.slice(0, 100);
    else {
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
  }
  putString(b, 0, 100, name);
  putString(b, 100, 8, octal(h.mode, 8));
  putString(b, 108, 8, octal(h.uid, 8));
  putString(b, 116, 8, octal(h.gid, 8));
  putString(b, 124, 12, octal(h.size, 12));
  putString(b, 136, 12, octal(FIXTURE_MTIME, 12));
  putString(b, 148, 8, "        ");
  putString(b, 156, 1, h.type);
  putString(b, 157, 100, h.linkname.slice(0, 100));
  putString(b, 257, 6, "ustar");
  putString(b, 263, 2, "00");
  putString(b, 329, 8, octal(0, 8));
  putString(b, 337, 8, octal(0, 8));
  putString(b, 345, 155, prefix);
  let sum = 0;
  for (const byte of b) sum += byte;
  putString(b, 148, 8, `${octal(sum, 7)}\0 `.slice(0, 8));
  return b;
}

/** Index of the slash that splits `name` into ustar prefix and name, or -1. */
function splitPoint(name: string): number {
  const bytes = enc.encode(name);
  if (bytes.length > 256) return -1;
  // The name part must not be empty: a directory's trailing slash is no split point.
  for (let i = bytes.length - 2; i > 0; i--) {
    if (bytes[i] !== 0x2f) continue; // "/"
    if (i <= 155 && bytes.length - i - 1 <= 100) return name.length - (bytes.length - i);
  }
  return -1;
}

/** One PAX record "LEN key=value\n", where LEN counts the whole record itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = enc.encode(body).length;
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return `${len}${body}`;
}

function padded(data: Uint8Array): Uint8Array[] {
  const rest = data.length % BLOCK;
  return rest === 0 ? [data] : [data, new Uint8Array(BLOCK - rest)];
}

/**
 * Packs a tree into an uncompressed tar archive: directories get a trailing
 * slash, paths are relative ("bin/sh"), every mtime is `FIXTURE_MTIME`.
 */
export function tarArchive(entries: readonly TreeEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  // A hard link's header carries its target's mode, as GNU tar writes it.
  const modes = new Map<string, number>();
  for (const e of entries) {
    const name = e.type === "dir" ? `${e.path}/` : e.path;
    const linkname = e.type === "symlink" || e.type === "hardlink" ? e.target : "";
    const pax: string[] = [];
    if (enc.encode(name).length > 100 && splitPoint(name) < 0) pax.push(paxRecord("path", name));
    if (enc.encode(linkname).length > 100) pax.push(paxRecord("linkpath", linkname));
    if (pax.length > 0) {
      const data = enc.encode(pax.join(""));
      const base = name.replace(/\/$/, "").split("/").pop() ?? "entry";
      chunks.push(headerBlock({
        name: `PaxHeaders/${base}`.slice(0, 100),
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: data.length,
        type: "x",
        linkname: "",
      }));
      chunks.push(...padded(data));
    }
    const owner = e.type === "hardlink" ? { uid: 0, gid: 0 } : { uid: e.uid ?? 0, gid: e.gid ?? 0 };
    const type = { dir: "5", file: "0", symlink: "2", hardlink: "1" }[e.type];
    const mode = e.type === "dir" || e.type === "file"
      ? e.mode
      : e.type === "hardlink"
      ? modes.get(e.target) ?? 0o644
      : 0o777;
    modes.set(e.path, mode);
    const data = e.type === "file" ? e.data : new Uint8Array(0);
    chunks.push(headerBlock({ name, mode, ...owner, size: data.length, type, linkname }));
    if (data.length > 0) chunks.push(...padded(data));
  }
  chunks.push(new Uint8Array(2 * BLOCK));
  return concat(chunks);
}

// ---------------------------------------------------------------------------
// OCI layout writing

function sha256(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** A compressed layer ready for a manifest. */
interface Layer {
  /** Descriptor with the OCI media type; Docker manifests swap it. */
  desc: Descriptor;
  diffId: string;
}

/** Image config fields that differ between fixtures. */
interface ImageConfig {
  architecture?: string;
  variant?: string;
  Cmd?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** This machine's architecture in OCI terms (the busybox binary is the host's). */
export function nativeArch(): string {
  return Deno.build.arch === "aarch64" ? "arm64" : "amd64";
}

class LayoutWriter {
  readonly top: Descriptor[] = [];
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await Deno.mkdir(`${this.dir}/blobs/sha256`, { recursive: true });
    await Deno.writeTextFile(
      `${this.dir}/oci-layout`,
      JSON.stringify({ imageLayoutVersion: "1.0.0" }),
    );
  }

  async blob(mediaType: string, data: Uint8Array): Promise<Descriptor> {
    const digest = sha256(data);
    const path = `${this.dir}/blobs/sha256/${digest.slice("sha256:".length)}`;
    try {
      const st = await Deno.stat(path);
      if (st.size === data.length) return { mediaType, digest, size: data.length };
    } catch {
      // Not there yet.
    }
    // Temporary name then rename, so a killed build leaves no torn blob.
    await Deno.writeFile(`${path}.tmp`, data);
    await Deno.rename(`${path}.tmp`, path);
    return { mediaType, digest, size: data.length };
  }

  async json(mediaType: string, doc: unknown): Promise<Descriptor> {
    return await this.blob(mediaType, enc.encode(JSON.stringify(doc)));
  }

  async layer(entries: readonly TreeEntry[], compression: "gzip" | "zstd"): Promise<Layer> {
    const tar = tarArchive(entries);
    const packed = compression === "gzip" ? gzipSync(tar, { level: 6 }) : zstdCompressSync(tar);
    const mediaType = compression === "gzip" ? MEDIA.ociLayerGzip : MEDIA.ociLayerZstd;
    return { desc: await this.blob(mediaType, new Uint8Array(packed)), diffId: sha256(tar) };
  }

  /** Writes config and manifest for `layers`; returns the manifest descriptor. */
  async image(
    layers: readonly Layer[],
    config: ImageConfig,
    description: string,
    docker = false,
  ): Promise<Descriptor> {
    const { architecture = nativeArch(), variant, ...runConfig } = config;
    const configDoc = {
      created: CREATED,
      architecture,
      ...(variant === undefined ? {} : { variant }),
      os: "linux",
      config: { Env: [DEFAULT_PATH], Cmd: ["sh"], WorkingDir: "/", ...runConfig },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({
        created: CREATED,
        created_by: `trun fixtures: ${description}`,
      })),
    };
    const configDesc = await this.json(docker ? MEDIA.dockerConfig : MEDIA.ociConfig, configDoc);
    const layerDescs = layers.map((l) =>
      docker ? { ...l.desc, mediaType: MEDIA.dockerLayerGzip } : l.desc
    );
    const mediaType = docker ? MEDIA.dockerManifest : MEDIA.ociManifest;
    const manifest = { schemaVersion: 2, mediaType, config: configDesc, layers: layerDescs };
    const desc = await this.json(mediaType, manifest);
    return variant === undefined
      ? { ...desc, platform: { architecture, os: "linux" } }
      : { ...desc, platform: { architecture, os: "linux", variant } };
  }

  tag(ref: string, desc: Descriptor): FixtureImage {
    const { platform: _platform, ...plain } = desc;
    this.top.push({ ...plain, annotations: { [REF_NAME_ANNOTATION]: ref } });
    return { ref, mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  }

  async finish(): Promise<void> {
    const index = { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: this.top };
    await Deno.writeTextFile(`${this.dir}/index.json.tmp`, JSON.stringify(index));
    await Deno.rename(`${this.dir}/index.json.tmp`, `${this.dir}/index.json`);
  }
}

// ---------------------------------------------------------------------------
// The fixture trees

const dirE = (path: string, mode = 0o755, uid = 0, gid = 0): TreeEntry => ({
  type: "dir",
  path,
  mode,
  uid,
  gid,
});
const fileE = (path: string, text: string, mode = 0o644, uid = 0, gid = 0): TreeEntry => ({
  type: "file",
  path,
  mode,
  uid,
  gid,
  data: enc.encode(text),
});

/** `/data` contents the top layer of `layered` then partly deletes. */
function layeredMiddle(): TreeEntry[] {
  return [
    dirE("data"),
    fileE("data/a", "a\n"),
    fileE("data/b", "b\n"),
    dirE("data/dir"),
    fileE("data/dir/x", "x\n"),
    dirE("data/gone"),
    fileE("data/gone/f", "f\n"),
    dirE("opt"),
    fileE("opt/keep", "keep\n"),
  ];
}

/**
 * The top layer of `layered`: removes `/data/a` and the directory
 * `/data/gone` (whiteouts), hides `/data/dir/x` (opaque directory) and adds
 * `/data/dir/y`. The result is `/data/b`, `/data/dir/y`, `/opt/keep`.
 */
function layeredTop(): TreeEntry[] {
  return [
    dirE("data"),
    fileE("data/.wh.a", ""),
    fileE("data/.wh.gone", ""),
    dirE("data/dir"),
    fileE("data/dir/.wh..wh..opq", ""),
    fileE("data/dir/y", "y\n"),
  ];
}

/** Files with several owners, set-id bits, a symlink and a hard link. */
function ownersTree(): TreeEntry[] {
  return [
    dirE("owners"),
    fileE("owners/root-file", "root\n", 0o644, 0, 0),
    dirE("owners/www", 0o750, 33, 33),
    fileE("owners/www/index.html", "<p>www</p>\n", 0o640, 33, 33),
    dirE("owners/app", 0o700, 1000, 1000),
    fileE("owners/app/data", "app\n", 0o600, 1000, 1000),
    fileE("owners/setuid", "#!/bin/sh\nid\n", 0o4755, 0, 0),
    fileE("owners/setgid", "#!/bin/sh\nid\n", 0o2755, 0, 33),
    dirE("owners/shared", 0o2775, 1000, 33),
    dirE("owners/sticky", 0o1777, 0, 0),
    { type: "symlink", path: "owners/link", target: "root-file" },
    { type: "symlink", path: "owners/app-link", target: "/owners/app/data", uid: 1000, gid: 1000 },
    { type: "hardlink", path: "owners/hardlink", target: "owners/root-file" },
  ];
}

/**
 * Regular host files for the big image: the arch's library directory,
 * sorted by name, taking files until `limit` bytes. Deterministic on a
 * given host.
 */
async function bigFiles(limit: number): Promise<{ name: string; data: Uint8Array }[]> {
  const arch = Deno.build.arch;
  const dirs = [`/usr/lib/${arch}-linux-gnu`, "/usr/lib", "/usr/bin"];
  const out: { name: string; data: Uint8Array }[] = [];
  let total = 0;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = [];
      for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (total >= limit) return out;
      const path = `${dir}/${name}`;
      const st = await Deno.stat(path);
      if (st.size === 0 || st.size > 8 << 20 || total + st.size > limit) continue;
      out.push({
        name: `${dir.slice(1).replaceAll("/", "_")}/${name}`,
        data: await Deno.readFile(path),
      });
      total += st.size;
    }
  }
  return out;
}

/**
 * Builds every fixture image into the OCI layout at `outDir` (created if
 * missing; blobs already there are kept, `index.json` is rewritten).
 */
export async function buildFixtures(outDir: string, opts: BuildOptions = {}): Promise<FixtureSet> {
  const w = new LayoutWriter(outDir);
  await w.init();
  const images: FixtureImage[] = [];
  const base = await busyboxTree();
  const busyboxLayer = await w.layer(base, "gzip");

  // (a) busybox, OCI media types; (f) the same with Docker schema2 ones.
  const labels = { Labels: { "org.trun.fixture": "busybox" } };
  images.push(
    w.tag("trun-fixtures/busybox:latest", await w.image([busyboxLayer], labels, "busybox")),
  );
  images.push(
    w.tag(
      "trun-fixtures/busybox:docker",
      await w.image([busyboxLayer], labels, "busybox", true),
    ),
  );

  // (b) layered: whiteouts and an opaque directory over a middle layer.
  const middle = await w.layer(layeredMiddle(), "gzip");
  const top = await w.layer(layeredTop(), "gzip");
  images.push(
    w.tag(
      "trun-fixtures/layered:latest",
      await w.image([busyboxLayer, middle, top], { WorkingDir: "/data" }, "layered"),
    ),
  );

  // (c) multiarch: one index, three platforms. Only the native entry can
  // run here; each carries /etc/fixture-platform naming its platform.
  const platforms = [
    { architecture: "amd64" },
    { architecture: "arm64" },
    { architecture: "arm", variant: "v7" },
  ];
  const children: Descriptor[] = [];
  for (const p of platforms) {
    const name = `linux/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
    const marker = await w.layer([dirE("etc"), fileE("etc/fixture-platform", `${name}\n`)], "gzip");
    children.push(await w.image([busyboxLayer, marker], p, `multiarch ${name}`));
  }
  const index = await w.json(MEDIA.ociIndex, {
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: children,
  });
  images.push(w.tag("trun-fixtures/multiarch:latest", index));

  // (d) zstd: both layers compressed with zstd.
  const zBase = await w.layer(base, "zstd");
  const zTop = await w.layer([dirE("zstd"), fileE("zstd/hello", "hello from zstd\n")], "zstd");
  images.push(w.tag("trun-fixtures/zstd:latest", await w.image([zBase, zTop], {}, "zstd")));

  // (e) owners.
  const owners = await w.layer(ownersTree(), "gzip");
  images.push(
    w.tag("trun-fixtures/owners:latest", await w.image([busyboxLayer, owners], {}, "owners")),
  );

  // (g) big: four layers, each the same host files under /big/N.
  if (opts.big ?? true) {
    const files = await bigFiles(opts.bigLayerBytes ?? 20 << 20);
    const layers = [busyboxLayer];
    for (let n = 1; n <= 4; n++) {
      const tree: TreeEntry[] = [dirE("big"), dirE(`big/${n}`)];
      const seen = new Set<string>();
      for (const f of files) {
        const dir = `big/${n}/${f.name.split("/")[0]}`;
        if (!seen.has(dir)) tree.push(dirE(dir));
        seen.add(dir);
        tree.push({ type: "file", path: `big/${n}/${f.name}`, mode: 0o644, data: f.data });
      }
      layers.push(await w.layer(tree, "gzip"));
    }
    images.push(w.tag("trun-fixtures/big:latest", await w.image(layers, {}, "big")));
  }

  await w.finish();
  return { layoutDir: outDir, images };
}

/** Pushes every image of the layout at `outDir` to `registryHost` ("127.0.0.1:PORT"). */
export async function pushFixtures(outDir: string, registryHost: string): Promise<PushedImage[]> {
  return await pushLayout(outDir, registryHost);
}

/** Prints one line of the script's report (scripts may print; the library part above does not). */
function say(line: string, stream: "out" | "err" = "out"): void {
  // deno-lint-ignore no-console
  (stream === "out" ? console.log : console.error)(line);
}

function usage(): never {
  say(
    "usage: deno run -A scripts/fixtures.ts [--registry HOST:PORT] [--out DIR] [--no-big]",
    "err",
  );
  Deno.exit(2);
}

if (import.meta.main) {
  let registry: string | undefined;
  let out: string | undefined;
  let big = true;
  const args = [...Deno.args];
  while (args.length > 0) {
    const a = args.shift();
    if (a === "--registry") registry = args.shift() ?? usage();
    else if (a === "--out") out = args.shift() ?? usage();
    else if (a === "--no-big") big = false;
    else usage();
  }
  const dir = out ?? await Deno.makeTempDir({ prefix: "trun-fixtures-" });
  const started = performance.now();
  const set = await buildFixtures(dir, { big });
  const ms = (t: number) => Math.round(performance.now() - t);
  say(`Built ${set.images.length} images in ${dir} (${ms(started)} ms)`);
  for (const img of set.images) say(`  ${img.ref}  ${img.digest}  ${img.mediaType}`);
  if (registry !== undefined) {
    const t = performance.now();
    const pushed = await pushFixtures(dir, registry);
    say(`Pushed ${pushed.length} images to ${registry} (${ms(t)} ms)`);
  }
}
