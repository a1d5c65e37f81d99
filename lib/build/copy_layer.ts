/**
 * The layer a COPY or ADD makes, built directly as a tar (no container):
 * Docker's rules for where each source lands (a file onto a file path or
 * into a directory; a directory's content into the destination; several
 * sources only into a directory), owners 0:0 unless `--chown`, modes kept
 * unless `--chmod`, here-documents as files, and for ADD local tar archives
 * unpacked. Directories above what is written get an entry too, with the
 * owner and mode they already have in the image (an overlay layer's
 * directory would otherwise replace them) or, when new, 0755.
 */
import type tarStream from "tar-stream";
import { posix } from "node:path";
import { type BuildContext, type ContextEntry, resolveSource, walkContext } from "./context.ts";
import { decompressedTar, detectCompression, normalizeEntryPath } from "../oci/layer_tar.ts";

/** One entry of the layer. */
export interface LayerEntry {
  /** Absolute path in the image (`/app/main.c`). */
  path: string;
  /** What it is. */
  type: "dir" | "file" | "symlink";
  /** Permission bits. */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Modification time. */
  mtime: Date;
  /** A file's content: a host path to read, or bytes. */
  content?: { path: string } | { bytes: Uint8Array };
  /** A symlink's target. */
  target?: string;
}

/** What a COPY/ADD reads and writes. */
export interface CopyRequest {
  /** Where sources come from: the context, or another image's root (`--from`). */
  source: BuildContext;
  /** Sources as written (`<<NAME` for a here-document). */
  sources: string[];
  /** The absolute destination. */
  dest: string;
  /** The destination was written with a trailing `/`. */
  destIsDir: boolean;
  /** `--chown`, resolved to numbers. */
  owner?: { uid: number; gid: number };
  /** `--chmod`. */
  mode?: number;
  /** ADD: unpack local tar archives. */
  add: boolean;
  /** Here-documents by name. */
  heredocs: { name: string; content: string }[];
  /** What the image already has at a path (following nothing), or null. */
  existing(path: string): Deno.FileInfo | null;
}

/** The entries of the layer, parents first. Reads the sources; throws naming a missing one. */
export async function copyEntries(r: CopyRequest): Promise<LayerEntry[]> {
  const owner = r.owner ?? { uid: 0, gid: 0 };
  const out = new Map<string, LayerEntry>();
  const items:
    ({ kind: "doc"; name: string; content: string } | { kind: "ctx"; e: ContextEntry })[] = [];
  for (const s of r.sources) {
    const doc = s.startsWith("<<") ? r.heredocs.find((h) => `<<${h.name}` === s) : undefined;
    if (doc) items.push({ kind: "doc", name: doc.name, content: doc.content });
    else {for (const e of resolveSource(r.source, s)) {
        items.push({ kind: "ctx", e: follow(r.source, e) });
      }}
  }
  const existingDest = r.existing(r.dest);
  const intoDir = r.destIsDir || items.length > 1 || existingDest?.isDirectory === true;
  const put = (e: LayerEntry) => out.set(e.path, e);
  const fileMode = (m: number | null) => r.mode ?? ((m ?? 0o644) & 0o7777);
  for (const item of items) {
    if (item.kind === "doc") {
      const path = intoDir ? posix.join(r.dest, item.name) : r.dest;
      put({
        path,
        type: "file",
        mode: r.mode ?? 0o644,
        ...owner,
        mtime: new Date(),
        content: { bytes: new TextEncoder().encode(item.content) },
      });
      continue;
    }
    const { e } = item;
    const hostPath = `${r.source.dir}/${e.rel}`;
    if (e.info.isDirectory) {
      // A directory's content goes into the destination, not the directory,
      // which is made 0755 when new (BuildKit's rule).
      put({ path: r.dest, type: "dir", mode: 0o755, ...owner, mtime: e.info.mtime ?? new Date() });
      for (const c of walkContext(r.source, e.rel)) {
        const rel = e.rel === "" ? c.rel : c.rel.slice(e.rel.length + 1);
        put(entryOf(posix.join(r.dest, rel), `${r.source.dir}/${c.rel}`, c.info, owner, r.mode));
      }
      continue;
    }
    const path = intoDir ? posix.join(r.dest, posix.basename(e.rel)) : r.dest;
    if (r.add && e.info.isFile && await isArchive(hostPath)) {
      for (const a of await archiveEntries(hostPath, r.dest, r.owner)) put(a);
      continue;
    }
    put({ ...entryOf(path, hostPath, e.info, owner, r.mode), mode: fileMode(e.info.mode) });
  }
  // Parents: as the image has them, else new.
  for (const path of [...out.keys()]) {
    for (let dir = posix.dirname(path); dir !== "/"; dir = posix.dirname(dir)) {
      if (out.has(dir)) continue;
      const have = r.existing(dir);
      out.set(
        dir,
        have?.isDirectory
          ? {
            path: dir,
            type: "dir",
            mode: (have.mode ?? 0o755) & 0o7777,
            uid: have.uid ?? 0,
            gid: have.gid ?? 0,
            mtime: have.mtime ?? new Date(),
          }
          : { path: dir, type: "dir", mode: 0o755, ...owner, mtime: new Date() },
      );
    }
  }
  // The destination directory itself, when it exists, keeps what it has.
  const destEntry = out.get(r.dest);
  if (destEntry?.type === "dir" && existingDest?.isDirectory) {
    out.set(r.dest, {
      ...destEntry,
      mode: (existingDest.mode ?? 0o755) & 0o7777,
      uid: existingDest.uid ?? 0,
      gid: existingDest.gid ?? 0,
    });
  }
  return [...out.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A top-level source symlink is followed, and must stay in the source tree. */
function follow(ctx: BuildContext, e: ContextEntry): ContextEntry {
  if (!e.info.isSymlink) return e;
  const real = Deno.realPathSync(`${ctx.dir}/${e.rel}`);
  const root = Deno.realPathSync(ctx.dir);
  if (real !== root && !real.startsWith(`${root}/`)) {
    throw new Error(`"${e.rel}" is a symlink that leaves the build context`);
  }
  return { rel: real.slice(root.length + 1), info: Deno.statSync(real) };
}

function dirEntry(
  path: string,
  info: Deno.FileInfo,
  owner: { uid: number; gid: number },
  mode: number | undefined,
): LayerEntry {
  return {
    path,
    type: "dir",
    mode: mode ?? (info.mode ?? 0o755) & 0o7777,
    ...owner,
    mtime: info.mtime ?? new Date(),
  };
}

function entryOf(
  path: string,
  hostPath: string,
  info: Deno.FileInfo,
  owner: { uid: number; gid: number },
  mode: number | undefined,
): LayerEntry {
  if (info.isDirectory) return dirEntry(path, info, owner, mode);
  const base = { path, ...owner, mtime: info.mtime ?? new Date() };
  if (info.isSymlink) {
    return { ...base, type: "symlink", mode: 0o777, target: Deno.readLinkSync(hostPath) };
  }
  if (!info.isFile) {
    throw new Error(
      `"${hostPath}" is neither a file, a directory nor a symlink: COPY cannot take it`,
    );
  }
  return {
    ...base,
    type: "file",
    mode: mode ?? (info.mode ?? 0o644) & 0o7777,
    content: { path: hostPath },
  };
}

/** Whether `path` is a tar (plain, gzip or zstd), which ADD unpacks. */
async function isArchive(path: string): Promise<boolean> {
  using f = await Deno.open(path, { read: true });
  const head = new Uint8Array(512);
  let n = 0;
  while (n < head.length) {
    const r = await f.read(head.subarray(n));
    if (r === null) break;
    n += r;
  }
  if (detectCompression(head.subarray(0, n)) !== "none") return true;
  // ustar magic at offset 257.
  return n >= 263 && new TextDecoder().decode(head.subarray(257, 262)) === "ustar";
}

/** ADD's unpacking of an archive into `dest`: its entries, owners kept unless `--chown`. */
async function archiveEntries(
  path: string,
  dest: string,
  owner: { uid: number; gid: number } | undefined,
): Promise<LayerEntry[]> {
  const tar = (await import("tar-stream")).default;
  const extract = tar.extract();
  const out: LayerEntry[] = [];
  using f = await Deno.open(path, { read: true });
  const feeding = (async () => {
    for await (const chunk of decompressedTar(f.readable)) {
      if (!extract.write(chunk)) {
        await new Promise<void>((resolve) => extract.once("drain", () => resolve()));
      }
    }
    (extract as unknown as { end(): void }).end();
  })().catch((err) => extract.destroy(err));
  type Entry = { header: tarStream.Header } & AsyncIterable<Uint8Array>;
  for await (const entry of extract as unknown as AsyncIterable<Entry>) {
    const h = entry.header;
    const rel = normalizeEntryPath(h.name);
    const chunks: Uint8Array[] = [];
    for await (const c of entry) chunks.push(c);
    if (rel === undefined) throw new Error(`archive "${path}" has an entry "${h.name}" outside it`);
    if (rel === "") continue;
    const base = {
      path: posix.join(dest, rel),
      mode: (h.mode ?? 0o644) & 0o7777,
      uid: owner?.uid ?? h.uid ?? 0,
      gid: owner?.gid ?? h.gid ?? 0,
      mtime: h.mtime ?? new Date(),
    };
    if (h.type === "directory") out.push({ ...base, type: "dir" });
    else if (h.type === "symlink") out.push({ ...base, type: "symlink", target: h.linkname ?? "" });
    else if (h.type === "file" || h.type === "contiguous-file") {
      let size = 0;
      for (const c of chunks) size += c.length;
      const bytes = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        bytes.set(c, at);
        at += c.length;
      }
      out.push({ ...base, type: "file", content: { bytes } });
    } else {
      throw new Error(
        `archive "${path}": entry "${h.name}" is a ${h.type}, which ADD does not unpack`,
      );
    }
  }
  await feeding;
  return out;
}

/** The layer tar of `entries` (paths without the leading `/`, directories with a trailing one). */
export async function layerTar(entries: readonly LayerEntry[]): Promise<AsyncIterable<Uint8Array>> {
  const tar = (await import("tar-stream")).default;
  const pack = tar.pack();
  (async () => {
    for (const e of entries) {
      const name = e.path.replace(/^\/+/, "") + (e.type === "dir" ? "/" : "");
      const header = { name, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime };
      if (e.type === "dir") {
        await entry(pack, { ...header, type: "directory" });
      } else if (e.type === "symlink") {
        await entry(pack, { ...header, type: "symlink", linkname: e.target ?? "" });
      } else {
        const bytes = e.content && "bytes" in e.content
          ? e.content.bytes
          : Deno.readFileSync((e.content as { path: string }).path);
        await entry(pack, { ...header, type: "file", size: bytes.length }, bytes);
      }
    }
    pack.finalize();
  })().catch((err) => pack.destroy(err));
  return pack as unknown as AsyncIterable<Uint8Array>;
}

function entry(
  pack: tarStream.Pack,
  header: Partial<tarStream.Header> & Pick<tarStream.Header, "name">,
  body?: Uint8Array,
): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, body as never, (err) => (err ? reject(err) : resolve()));
  });
}
