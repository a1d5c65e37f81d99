/**
 * Where images and containers live, and whether their root file systems can
 * be mounted. trun mounts every container root as kernel overlayfs with the
 * `userxattr` option (Linux 5.11 for a user namespace; Documentation/
 * filesystems/overlayfs.rst) and has no other way: no fuse-overlayfs, no
 * copied root. fuse-overlayfs(1) and /dev/fuse are reported for reference
 * only (other rootless runtimes use them). The store's file system matters
 * too: network file systems lose owners and xattrs.
 * {@link tryOverlayInUserns} mounts an overlay in a user namespace for real.
 */
import { type PathEnv, runtimeRoot, storeRoot } from "../paths.ts";
import { findExecutable } from "../runtime/idmap.ts";
import { errorMessage } from "../util/errors.ts";
import { type DeviceAccess, deviceAccess, type Who } from "./access.ts";
import { readText, run, statOrNull } from "./_files.ts";
import { filesystemOfPath, type MountEntry } from "./mountinfo.ts";

/** Kernel overlayfs, as `trun run` mounts it. */
export interface KernelOverlayReport {
  /** `registered` in /proc/filesystems, loadable `module`, or `missing`. */
  filesystem: "registered" | "module" | "missing";
  /** Kernel ≥ 5.11 (overlay in a user namespace); true for root, which needs none. */
  kernelSupportsUserns: boolean;
  /** `works`/`fails` when tested; else `expected` or `unavailable` from static checks. */
  status: "works" | "fails" | "expected" | "unavailable";
  /** Whether {@link tryOverlayInUserns} ran. */
  tested: boolean;
}

/** Where images and containers live, and how root file systems get mounted. */
export interface StorageReport {
  /** The store root (lib/paths.ts), or null when it cannot be known. */
  storeRoot: string | null;
  /** The file system type holding it (or its nearest existing ancestor). */
  storeFilesystem: string | null;
  /** The runtime state root. */
  runtimeRoot: string | null;
  /** The file system type holding it. */
  runtimeFilesystem: string | null;
  /** Kernel overlayfs: the only way trun mounts a container's root. */
  kernelOverlay: KernelOverlayReport;
  /** fuse-overlayfs, if installed (not used by trun; reported for reference). */
  fuseOverlayfs: string | null;
  /** /dev/fuse (not used by trun; reported for reference). */
  devFuse: DeviceAccess;
}

/** Who and where {@link probeStorage} probes. */
export interface StorageInput {
  /** Prefix for /proc, /lib/modules, /dev and the PATH directories. */
  root: string;
  /** The probed user. */
  who: Who;
  /** `/proc/sys/kernel/osrelease`, or null when unknown. */
  kernel: string | null;
  /** The PATH searched for fuse-overlayfs. */
  pathEnv: string;
  /** Identity and environment for the store and runtime paths. */
  paths: PathEnv;
  /** The mount table (for the store's file system). */
  mounts: readonly MountEntry[];
}

/** `6.18.44-fc` → [6, 18]; null when the release does not start with numbers. */
function kernelVersion(release: string | null): [number, number] | null {
  const m = release?.match(/^(\d+)\.(\d+)/);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function overlayFilesystem(
  root: string,
  release: string | null,
): "registered" | "module" | "missing" {
  const fs = readText(`${root}/proc/filesystems`) ?? "";
  if (fs.split("\n").some((l) => l.trim().split(/\s+/).pop() === "overlay")) return "registered";
  if (release) {
    const dir = `${root}/lib/modules/${release}`;
    if (/(^|\/)overlay\.ko/m.test(readText(`${dir}/modules.builtin`) ?? "")) return "registered";
    for (const ext of ["", ".xz", ".zst", ".gz"]) {
      if (statOrNull(`${dir}/kernel/fs/overlayfs/overlay.ko${ext}`)) return "module";
    }
  }
  return "missing";
}

function storagePath(get: () => string): { path: string | null; error: string | null } {
  try {
    return { path: get(), error: null };
  } catch (e) {
    return { path: null, error: errorMessage(e) };
  }
}

/**
 * The static storage checks and the problems they find about where data
 * lives (no store directory, a network file system). Overlay problems come
 * from {@link overlayProblems}, after any active test.
 */
export function probeStorage(input: StorageInput): { report: StorageReport; problems: string[] } {
  const { root, who, kernel, mounts } = input;
  const problems: string[] = [];
  const rootless = who.uid !== 0;
  const store = storagePath(() => storeRoot(input.paths));
  const runtime = storagePath(() => runtimeRoot(input.paths));
  if (store.error) problems.push(`${store.error}: trun has nowhere to keep images`);
  const storeFilesystem = filesystemOfPath(store.path, mounts);
  if (storeFilesystem && /^(nfs4?|cifs|smb3)$/.test(storeFilesystem)) {
    problems.push(
      `the store ${store.path} is on ${storeFilesystem}: network file systems lose file owners ` +
        `and xattrs, so images unpack wrongly; set TRUN_ROOT to a local directory`,
    );
  }
  const version = kernelVersion(kernel);
  const kernelSupportsUserns = !rootless ||
    (version !== null && (version[0] > 5 || (version[0] === 5 && version[1] >= 11)));
  const filesystem = overlayFilesystem(root, kernel);
  return {
    report: {
      storeRoot: store.path,
      storeFilesystem,
      runtimeRoot: runtime.path,
      runtimeFilesystem: filesystemOfPath(runtime.path, mounts),
      kernelOverlay: {
        filesystem,
        kernelSupportsUserns,
        status: kernelSupportsUserns && filesystem !== "missing" ? "expected" : "unavailable",
        tested: false,
      },
      fuseOverlayfs: findExecutable("fuse-overlayfs", input.pathEnv, root),
      devFuse: deviceAccess(root, "/dev/fuse", who),
    },
    problems,
  };
}

/** What happens without kernel overlay: trun has no other way to mount a root. */
const NO_ROOT = "containers cannot start (trun mounts every container root with kernel overlay)";

/** The problem line when kernel overlay is unavailable by the static checks, or none. */
export function overlayProblems(overlay: KernelOverlayReport, kernel: string | null): string[] {
  if (overlay.status !== "unavailable") return [];
  return [
    kernel === null || kernelVersion(kernel) === null
      ? "the kernel version is unknown (no /proc/sys/kernel/osrelease): overlay in a user " +
        `namespace is assumed unavailable, so ${NO_ROOT}`
      : !overlay.kernelSupportsUserns
      ? `kernel ${kernel} cannot mount overlay in a user namespace (needs 5.11): ${NO_ROOT}; ` +
        "use Linux 5.11 or later"
      : "the overlay file system is not in this kernel (not in /proc/filesystems, no module): " +
        `${NO_ROOT}; modprobe overlay`,
  ];
}

/** The problem line for a failed {@link tryOverlayInUserns}. */
export function overlayFailure(stderr: string): string {
  return `mounting overlay in a user namespace failed (${stderr || "no message"}): ${NO_ROOT}`;
}

/**
 * Tries an overlay mount with `userxattr` in a new user and mount namespace
 * with `unshare -Urm` (a single-id mapping is enough for overlay). The
 * scratch directories go in `near` when given (the store's file system is
 * the one that matters), else in the temp dir; the mount dies with the
 * namespace.
 */
export async function tryOverlayInUserns(
  unshare: string,
  near: string | null = null,
): Promise<{ ok: boolean; stderr: string }> {
  let dir: string;
  try {
    dir = await Deno.makeTempDir(
      near ? { dir: near, prefix: ".probe-" } : { prefix: "trun-probe-" },
    );
  } catch {
    dir = await Deno.makeTempDir({ prefix: "trun-probe-" });
  }
  try {
    for (const d of ["lower", "upper", "work", "merged"]) await Deno.mkdir(`${dir}/${d}`);
    const opts = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work,userxattr`;
    return await run(unshare, [
      "-Urm",
      "mount",
      "-t",
      "overlay",
      "overlay",
      "-o",
      opts,
      `${dir}/merged`,
    ]);
  } finally {
    // overlay leaves work/work with mode 0000, which a recursive remove cannot list.
    await Deno.chmod(`${dir}/work/work`, 0o700).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
