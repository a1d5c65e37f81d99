/**
 * What this host offers a rootless container runtime, and what each missing
 * piece costs: the data behind `trun info` and the integration tests' skip
 * checks. One module per domain: userns.ts (user namespaces, newuidmap,
 * subordinate ids), storage.ts (store paths, kernel overlay), cgroup.ts,
 * network.ts (pasta, slirp4netns, /dev/net/tun), mountinfo.ts, access.ts
 * (opening files by mode bits); {@link probeHost} assembles their findings.
 *
 * Static checks by default (files and modes only, a few milliseconds). With
 * `active`, `unshare -Ur` really creates a user namespace and mounts an
 * overlay in it (`trun info --probe`).
 *
 * Every kernel path is read under `root` so tests build fake trees.
 */
import type { PathEnv } from "../paths.ts";
import { currentUserName, findExecutable } from "../runtime/idmap.ts";
import { supplementaryGroups } from "./access.ts";
import { readText, statOrNull } from "./_files.ts";
import { cgroupProblems, type CgroupReport, probeCgroups } from "./cgroup.ts";
import { readMountInfo } from "./mountinfo.ts";
import { type NetworkReport, probeNetwork } from "./network.ts";
import {
  overlayFailure,
  overlayProblems,
  probeStorage,
  type StorageReport,
  tryOverlayInUserns,
} from "./storage.ts";
import {
  probeUserNamespaces,
  tryUserNamespace,
  type UserNamespacesReport,
  usernsFailure,
} from "./userns.ts";

export { canReadWrite, type DeviceAccess, type Owned } from "./access.ts";
export type { CgroupReport } from "./cgroup.ts";
export { filesystemOf, type MountEntry, parseMountInfo } from "./mountinfo.ts";
export type { NetworkReport } from "./network.ts";
export type { KernelOverlayReport, StorageReport } from "./storage.ts";
export {
  type HelperReport,
  type IdSpan,
  parseFileCaps,
  type UserNamespacesReport,
} from "./userns.ts";

/** The probe's findings, grouped as `trun info` shows them. JSON keys are stable. */
export interface HostReport {
  /** The machine and the probed user. */
  host: {
    os: string;
    arch: string;
    /** `/proc/sys/kernel/osrelease`. */
    kernel: string | null;
    /** PRETTY_NAME from `/etc/os-release`. */
    distribution: string | null;
    user: { name: string; uid: number; gid: number };
  };
  /** Whether containers can get a user namespace and a full id mapping. */
  userNamespaces: UserNamespacesReport;
  /** Where images and containers live, and how root file systems get mounted. */
  storage: StorageReport;
  /** Which cgroup hierarchy this host has and whether trun may create cgroups in it. */
  cgroups: CgroupReport;
  /** What gives containers a network. */
  network: NetworkReport;
  /** One line per missing piece: what it costs and how to fix it. */
  problems: string[];
}

/** Where and as whom {@link probeHost} looks; defaults are the real host and caller. */
export interface ProbeOptions {
  /** Prefix for /proc, /sys, /etc, /dev, /lib/modules and the PATH directories. */
  root?: string;
  /** Default `Deno.uid()`. */
  uid?: number;
  /** Default `Deno.gid()`. */
  gid?: number;
  /** Supplementary groups; default from `/proc/self/status`. */
  groups?: number[];
  /** Default: /etc/passwd, then USER/LOGNAME. */
  userName?: string;
  /** The PATH searched for helpers (default `$PATH`). */
  pathEnv?: string;
  /** Identity and environment for the store and runtime paths (lib/paths.ts). */
  paths?: PathEnv;
  /** Run `unshare` to test user namespaces and overlay for real (spawns processes). */
  active?: boolean;
  /** Reads `security.capability` of a file (default: lgetxattr through ffi/fs.ts). */
  readFileCaps?: (path: string) => Uint8Array | null;
}

const GO_ARCH: Readonly<Record<string, string>> = { "x86_64": "amd64", "aarch64": "arm64" };

/**
 * Probes the host (see the module doc) and lists the problems, each as one
 * line that says what the missing piece costs and how to fix it.
 */
export async function probeHost(opts: ProbeOptions = {}): Promise<HostReport> {
  const root = opts.root ?? "";
  const uid = opts.uid ?? Deno.uid() ?? 0;
  const gid = opts.gid ?? Deno.gid() ?? 0;
  const groups = opts.groups ?? [gid, ...supplementaryGroups(root)];
  const who = { uid, groups };
  const name = opts.userName ??
    currentUserName(uid, {
      passwdPath: `${root}/etc/passwd`,
      env: root === "" ? { USER: Deno.env.get("USER"), LOGNAME: Deno.env.get("LOGNAME") } : {},
    });
  const pathEnv = opts.pathEnv ?? Deno.env.get("PATH") ?? "";
  const problems: string[] = [];
  const rootless = uid !== 0;

  // Host.
  const kernel = readText(`${root}/proc/sys/kernel/osrelease`)?.trim() || null;
  const osRelease = readText(`${root}/etc/os-release`) ?? "";
  const pretty = osRelease.match(/^PRETTY_NAME="?([^"\n]*)"?$/m)?.[1] ?? null;

  // User namespaces and id mapping.
  const userns = await probeUserNamespaces({
    root,
    uid,
    gid,
    name,
    pathEnv,
    ...(opts.readFileCaps ? { readFileCaps: opts.readFileCaps } : {}),
  });
  problems.push(...userns.problems);

  // Storage.
  const mounts = readMountInfo(root);
  const paths = opts.paths ?? { uid, env: Deno.env.toObject() };
  const storage = probeStorage({ root, who, kernel, pathEnv, paths, mounts });
  problems.push(...storage.problems);

  // Active checks: only when asked (they spawn processes and mount in a throwaway namespace).
  const overlay = storage.report.kernelOverlay;
  if (opts.active && rootless) {
    const unshare = findExecutable("unshare", pathEnv, root);
    if (unshare === null) {
      problems.push("unshare not found: the --probe checks were skipped; install util-linux");
    } else {
      const ns = await tryUserNamespace(`${root}${unshare}`);
      userns.report.tested = ns.ok ? "works" : "fails";
      if (!ns.ok) {
        userns.report.allowed = false;
        problems.push(usernsFailure(ns.stderr));
      } else {
        const mounted = await tryOverlayInUserns(
          `${root}${unshare}`,
          existingDir(storage.report.storeRoot),
        );
        overlay.tested = true;
        overlay.status = mounted.ok ? "works" : "fails";
        if (!mounted.ok) problems.push(overlayFailure(mounted.stderr));
      }
    }
  }
  problems.push(...overlayProblems(overlay, kernel));

  // Cgroups.
  const cgroups = probeCgroups(root, who, mounts);
  problems.push(...cgroupProblems(cgroups, name, uid));

  // Network.
  const network = probeNetwork({ root, who, name, pathEnv });
  problems.push(...network.problems);

  return {
    host: {
      os: Deno.build.os,
      arch: GO_ARCH[Deno.build.arch] ?? Deno.build.arch,
      kernel,
      distribution: pretty,
      user: { name, uid, gid },
    },
    userNamespaces: userns.report,
    storage: storage.report,
    cgroups,
    network: network.report,
    problems,
  };
}

function existingDir(path: string | null): string | null {
  return path !== null && statOrNull(path)?.isDirectory ? path : null;
}
