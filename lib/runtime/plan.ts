/**
 * The container plan: everything trun will do to start one container, as
 * plain data. Built by a pure function from the run request and facts read
 * from the host and the rootfs; printed by `--debug`; compiled into the child
 * program by `child_program.ts`.
 */
import type { IdMapping } from "./idmap.ts";
import {
  MASKED_PATHS,
  type MountSpec,
  READONLY_PATHS,
  standardMounts,
  type VolumeSpec,
} from "./mounts.ts";

/** Which namespaces the container gets. */
export interface NamespacePlan {
  /** A new user namespace (rootless); false when trun runs as root. */
  user: boolean;
  /** A new network namespace (`--network none`); otherwise the host's network. */
  net: boolean;
}

/** The container's root filesystem. */
export interface RootfsPlan {
  /** Lower directories, top first (overlay order). */
  lowers: string[];
  /**
   * Host directory on which a private tmpfs is mounted to hold the throwaway
   * upper and work dirs and the merged root (`<scratch>/root`).
   */
  scratch: string;
  /** `--read-only`: the root is mounted read-only. */
  readOnly: boolean;
  /**
   * Pass each lower directory as its own `lowerdir+` option (Linux ≥ 6.8);
   * newer kernels refuse a colon-separated `lowerdir` through fsconfig(2).
   */
  lowerdirAppend: boolean;
}

/** The process the container runs. */
export interface ProcessPlan {
  /** argv. */
  args: string[];
  /** Absolute paths execve tries in order (execvp through $PATH). */
  executables: string[];
  /** `NAME=VALUE` list. */
  env: string[];
  /** Working directory inside the container. */
  cwd: string;
  /** uid inside the container. */
  uid: number;
  /** gid inside the container. */
  gid: number;
  /** Supplementary groups. */
  additionalGids: number[];
  /** `-i`: the container reads trun's stdin; otherwise its stdin is /dev/null, as Docker does. */
  keepStdin: boolean;
  /** `-t`: the container's stdio is a pseudo-terminal that trun relays. */
  tty: boolean;
  /** Capabilities kept in the bounding set (numbers, capabilities(7)). */
  capabilities: number[];
}

/** Everything needed to start one container. */
export interface ContainerPlan {
  /** Container id (64 hex). */
  id: string;
  /** UTS hostname. */
  hostname: string;
  /** Namespaces beyond mount, PID, UTS and IPC (always new). */
  namespaces: NamespacePlan;
  /** The id mapping of the user namespace. */
  idMapping: IdMapping;
  /** Root filesystem. */
  rootfs: RootfsPlan;
  /** Mounts in order, targets inside the container. */
  mounts: MountSpec[];
  /** Paths hidden from the container. */
  maskedPaths: { path: string; dir: boolean }[];
  /** Paths made read-only. */
  readonlyPaths: string[];
  /** The process. */
  process: ProcessPlan;
  /** Host paths trun made for this container and removes after it exits. */
  cleanup: string[];
}

/** Docker's default capability set (capabilities(7) numbers). */
export const DEFAULT_CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_RAW: 13,
  CAP_SYS_CHROOT: 18,
  CAP_MKNOD: 27,
  CAP_AUDIT_WRITE: 29,
  CAP_SETFCAP: 31,
};

/** What `assemblePlan` needs beyond decisions already made (user, env, command). */
export interface PlanInput {
  id: string;
  hostname: string;
  idMapping: IdMapping;
  network: "host" | "none";
  rootfs: RootfsPlan;
  volumes: VolumeSpec[];
  /** Files trun prepared (hosts, hostname, resolv.conf): host path → container path. */
  etcFiles?: { source: string; target: string }[];
  /** Host paths to remove after the container exits. */
  cleanup?: string[];
  process: Omit<ProcessPlan, "capabilities">;
  /** Whether a path exists on the host (masked /proc and /sys paths come from the same kernel). */
  hostHas: (path: string) => { exists: boolean; dir: boolean };
}

/**
 * Puts the plan together: standard mounts, volumes (after the standard
 * mounts so that a volume on /dev/shm or under /sys wins), masks, read-only
 * paths and the default capabilities.
 */
export function assemblePlan(input: PlanInput): ContainerPlan {
  const user = input.idMapping.mode !== "host";
  const ownNetwork = input.network === "none";
  const mapsGid = (gid: number) =>
    !user || input.idMapping.gid.some((r) => gid >= r.inside && gid < r.inside + r.count);
  const mounts = standardMounts({ ownNetwork, ttyGroupMapped: mapsGid(5) });
  // Bound before the volumes, so a user's -v on /etc/hosts wins.
  for (const f of input.etcFiles ?? []) {
    mounts.push({
      kind: "bind",
      source: f.source,
      target: f.target,
      targetType: "file",
      recursive: false,
      attrs: {},
      noSymlinks: false,
    });
  }
  for (const v of input.volumes) {
    const host = input.hostHas(v.source);
    if (!host.exists) {
      throw new Error(`bind source path does not exist: "${v.source}"`);
    }
    mounts.push({
      kind: "bind",
      source: v.source,
      target: v.target,
      targetType: host.dir ? "dir" : "file",
      recursive: true,
      attrs: { readOnly: v.readOnly },
      noSymlinks: false,
    });
  }
  // The masked paths live in /proc and /sys, which show the same kernel
  // inside as on the host: a path missing here is missing there too.
  const maskedPaths = MASKED_PATHS.map((path) => ({ path, host: input.hostHas(path) }))
    .filter((m) => m.host.exists)
    .map((m) => ({ path: m.path, dir: m.host.dir }));
  const readonlyPaths = READONLY_PATHS.filter((p) => input.hostHas(p).exists);
  return {
    id: input.id,
    hostname: input.hostname,
    namespaces: { user, net: ownNetwork },
    idMapping: input.idMapping,
    rootfs: input.rootfs,
    mounts,
    maskedPaths,
    readonlyPaths,
    process: { ...input.process, capabilities: Object.values(DEFAULT_CAPABILITIES) },
    cleanup: [input.rootfs.scratch, ...(input.cleanup ?? [])],
  };
}
