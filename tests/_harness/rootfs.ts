/**
 * Root filesystems for integration tests, built from Debian's
 * `busybox-static` (one static binary, so the rootfs needs no host
 * libraries), plus deliberately hostile variants whose mount targets are
 * symlinks pointing out of the rootfs, for the escape tests.
 *
 * The same tree description (`busyboxTree()`) is written to disk here and
 * packed into tar layers by `scripts/fixtures.ts`, so the directory rootfs
 * and the `trun-fixtures/busybox` image hold the same files.
 */

/** One entry of a filesystem tree; `path` is relative ("bin/sh"), without a trailing slash. */
export type TreeEntry =
  | { type: "dir"; path: string; mode: number; uid?: number; gid?: number }
  | { type: "file"; path: string; mode: number; uid?: number; gid?: number; data: Uint8Array }
  | { type: "symlink"; path: string; target: string; uid?: number; gid?: number }
  /** A hard link to the earlier entry at `target` (a tree path, no leading slash). */
  | { type: "hardlink"; path: string; target: string };

/** `/etc/passwd` of the test rootfs and the fixture images. */
export const FIXTURE_PASSWD: string = [
  "root:x:0:0:root:/root:/bin/sh",
  "daemon:x:1:1:daemon:/usr/sbin:/bin/false",
  "www-data:x:33:33:www-data:/var/www:/bin/false",
  "app:x:1000:1000:app:/home/app:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "",
].join("\n");

/** `/etc/group` of the test rootfs and the fixture images (`app` has supplementary groups). */
export const FIXTURE_GROUP: string = [
  "root:x:0:",
  "daemon:x:1:",
  "wheel:x:10:app",
  "audio:x:29:app",
  "www-data:x:33:",
  "app:x:1000:",
  "nogroup:x:65534:",
  "",
].join("\n");

/** Where Debian's packages put busybox (with usrmerge `/bin` is `/usr/bin`). */
const BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox"];

/**
 * The path of a statically linked busybox on this host, or null.
 *
 * A dynamically linked one (Debian's `busybox` package) would not run in a
 * rootfs without the host's libc, so it does not count.
 */
export async function findStaticBusybox(): Promise<string | null> {
  for (const path of BUSYBOX_CANDIDATES) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch {
      continue;
    }
    if (isStaticElf(bytes)) return path;
  }
  return null;
}

/**
 * Whether an ELF image has no `PT_INTERP` program header (no dynamic
 * loader), i.e. it is statically linked. Only 64-bit little-endian ELF
 * counts; anything else is reported as not static.
 */
export function isStaticElf(bytes: Uint8Array): boolean {
  const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
  if (bytes.length < 64 || ELF_MAGIC.some((b, i) => bytes[i] !== b)) return false;
  const ELFCLASS64 = 2, ELFDATA2LSB = 1, PT_INTERP = 3;
  if (bytes[4] !== ELFCLASS64 || bytes[5] !== ELFDATA2LSB) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > bytes.length) return false;
    if (view.getUint32(at, true) === PT_INTERP) return false;
  }
  return true;
}

/** The applet names a busybox binary provides (`busybox --list`), sorted, without "busybox". */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  const out = await new Deno.Command(busybox, { args: ["--list"], stdin: "null" }).output();
  if (!out.success) {
    throw new Error(`Cannot list busybox applets: "${busybox} --list" exited with ${out.code}`);
  }
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((name) => name !== "" && name !== "busybox" && !name.includes("/"))
    .sort();
}

/**
 * The minimal busybox system as a tree: `bin/busybox` with a symlink per
 * applet, users and groups in `/etc`, the usual empty mount points, `/tmp`
 * sticky and world-writable, and `/home/app` owned by 1000:1000. Without
 * `busybox`, uses the host's static one; the result is shared, so callers
 * copy before changing it.
 */
export function busyboxTree(busybox?: string): Promise<TreeEntry[]> {
  if (busybox !== undefined) return buildBusyboxTree(busybox);
  // Reading busybox and listing its applets once per process is enough.
  defaultTree ??= buildBusyboxTree(undefined);
  defaultTree.catch(() => defaultTree = null);
  return defaultTree;
}

let defaultTree: Promise<TreeEntry[]> | null = null;

async function buildBusyboxTree(busybox: string | undefined): Promise<TreeEntry[]> {
  const binary = busybox ?? await findStaticBusybox();
  if (binary === null) {
    throw new Error("Cannot build a busybox rootfs: no static busybox; install busybox-static");
  }
  const enc = new TextEncoder();
  const dir = (path: string, mode = 0o755, uid = 0, gid = 0): TreeEntry => ({
    type: "dir",
    path,
    mode,
    uid,
    gid,
  });
  const entries: TreeEntry[] = [
    dir("bin"),
    dir("dev"),
    dir("etc"),
    dir("home"),
    dir("home/app", 0o755, 1000, 1000),
    dir("proc", 0o555),
    dir("root", 0o700),
    dir("run"),
    dir("sys", 0o555),
    dir("tmp", 0o1777),
    dir("usr"),
    dir("usr/bin"),
    dir("var"),
    dir("var/tmp", 0o1777),
    { type: "file", path: "bin/busybox", mode: 0o755, data: await Deno.readFile(binary) },
  ];
  for (const applet of await busyboxApplets(binary)) {
    entries.push({ type: "symlink", path: `bin/${applet}`, target: "busybox" });
  }
  // Scripts say `#!/usr/bin/env sh`; busybox has env, but only in /bin.
  entries.push({ type: "symlink", path: "usr/bin/env", target: "../../bin/busybox" });
  entries.push({ type: "file", path: "etc/passwd", mode: 0o644, data: enc.encode(FIXTURE_PASSWD) });
  entries.push({ type: "file", path: "etc/group", mode: 0o644, data: enc.encode(FIXTURE_GROUP) });
  return entries;
}

/**
 * Writes a tree under `root` (which must exist). Ownership is applied only
 * when `chown` is set (it needs root); modes are set explicitly so the
 * umask does not matter.
 */
export async function writeTree(root: string, entries: TreeEntry[], chown: boolean): Promise<void> {
  for (const e of entries) {
    const path = `${root}/${e.path}`;
    switch (e.type) {
      case "dir":
        await Deno.mkdir(path, { recursive: true });
        await Deno.chmod(path, e.mode);
        if (chown) await Deno.chown(path, e.uid ?? 0, e.gid ?? 0);
        break;
      case "file":
        await Deno.writeFile(path, e.data, { mode: e.mode });
        // chown clears set-id bits, so ownership goes first and the mode last.
        if (chown) await Deno.chown(path, e.uid ?? 0, e.gid ?? 0);
        await Deno.chmod(path, e.mode);
        break;
      case "symlink":
        await Deno.symlink(e.target, path);
        // Root creates links as 0:0 already; a process per link would cost seconds.
        if (chown && ((e.uid ?? 0) !== 0 || (e.gid ?? 0) !== 0)) {
          await lchown(path, e.uid ?? 0, e.gid ?? 0);
        }
        break;
      case "hardlink":
        await Deno.link(`${root}/${e.target}`, path);
        break;
    }
  }
}

/** chown(2) on a symlink itself; Deno.chown follows links, so this goes through `chown -h`. */
async function lchown(path: string, uid: number, gid: number): Promise<void> {
  const out = await new Deno.Command("chown", { args: ["-h", `${uid}:${gid}`, path] }).output();
  if (!out.success) throw new Error(`Cannot chown "${path}": chown exited with ${out.code}`);
}

/** Where the per-process rootfs copies live; removed when the process ends. */
let cacheDir: string | null = null;
const cached = new Map<string, Promise<string>>();

async function processCacheDir(): Promise<string> {
  if (cacheDir === null) {
    cacheDir = await Deno.makeTempDir({ prefix: "trun-rootfs-" });
    // Rootless containers see the host user as their root; make the
    // directory traversable for the other mapped ids too.
    await Deno.chmod(cacheDir, 0o755);
    const dir = cacheDir;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // Best effort: a leftover under /tmp is harmless.
      }
    });
  }
  return cacheDir;
}

function once(key: string, build: (dir: string) => Promise<void>): Promise<string> {
  let p = cached.get(key);
  if (p === undefined) {
    p = (async () => {
      const dir = `${await processCacheDir()}/${key}`;
      await Deno.mkdir(dir, { mode: 0o755 });
      await build(dir);
      return dir;
    })();
    // A failed build must not poison the cache for later callers.
    p.catch(() => cached.delete(key));
    cached.set(key, p);
  }
  return p;
}

/**
 * A busybox rootfs directory. With `dir`, builds it there (the directory
 * is created if missing and should be empty) and returns `dir`; without,
 * returns one shared copy per process, built on first use. Treat the shared
 * copy as read-only. Files belong to the caller unless running as root.
 */
export async function busyboxRootfs(dir?: string): Promise<string> {
  if (dir !== undefined) {
    await Deno.mkdir(dir, { recursive: true });
    await writeTree(dir, await busyboxTree(), Deno.uid() === 0);
    return dir;
  }
  return await once("busybox", async (d) => {
    await writeTree(d, await busyboxTree(), Deno.uid() === 0);
  });
}

/** The hostile rootfs variants: each turns one mount target into a symlink out of the rootfs. */
export const HOSTILE_KINDS = {
  /** `/proc` → `/`: mounting procfs on it must not cover the host's root. */
  "proc-symlink": { path: "proc", target: "/" },
  /** `/dev` → `../../..`: a relative escape through the rootfs's parents. */
  "dev-symlink": { path: "dev", target: "../../.." },
  /** `/sys` → `/tmp`: an absolute link to a writable host directory. */
  "sys-symlink": { path: "sys", target: "/tmp" },
  /** `/dev` is a real directory, but `/dev/pts` → `/`. */
  "devpts-symlink": { path: "dev/pts", target: "/" },
  /** `/tmp` → `/`: the tmpfs mount target points at the root. */
  "tmp-symlink": { path: "tmp", target: "/" },
} as const;

/** The name of one hostile rootfs variant. */
export type HostileKind = keyof typeof HOSTILE_KINDS;

/**
 * A busybox rootfs whose mount target named by `kind` is a symlink that
 * points out of the rootfs (see `HOSTILE_KINDS`). One copy per kind per
 * process; treat it as read-only.
 */
export async function hostileRootfs(kind: HostileKind): Promise<string> {
  const { path, target } = HOSTILE_KINDS[kind];
  return await once(`hostile-${kind}`, async (d) => {
    const tree = (await busyboxTree()).filter((e) =>
      e.path !== path && !e.path.startsWith(`${path}/`)
    );
    tree.push({ type: "symlink", path, target });
    await writeTree(d, tree, Deno.uid() === 0);
  });
}

/** A busybox root file system as a tar at `tar` (owners 0:0), for `trun import`. */
export async function busyboxRootfsTar(tar: string): Promise<string> {
  const rootfs = await busyboxRootfs(`${tar}.d`);
  const out = await new Deno.Command("tar", {
    args: ["-C", rootfs, "--owner=0", "--group=0", "--numeric-owner", "-cf", tar, "."],
  }).output();
  if (!out.success) throw new Error(`tar: ${new TextDecoder().decode(out.stderr)}`);
  return tar;
}
