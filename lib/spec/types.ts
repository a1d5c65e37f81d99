/**
 * The OCI runtime specification's `config.json` (version 1.2), as the
 * TypeScript shapes trun generates and accepts: the same document runc,
 * crun and youki consume and Podman or containerd hand to a runtime. Field
 * names and meanings follow the spec's config.md and config-linux.md; only
 * the Linux platform is described. Types only: what trun honours or
 * refuses is decided in `lib/engine/config.ts`.
 */

/** The spec version trun writes and the newest it reads. */
export const OCI_VERSION = "1.2.0";

/** A `config.json`. */
export interface Spec {
  /** SemVer of the spec the document follows. */
  ociVersion: string;
  /** The container's process. */
  process?: Process;
  /** The root filesystem. */
  root?: Root;
  /** UTS hostname. */
  hostname?: string;
  /** UTS NIS domain name. */
  domainname?: string;
  /** Additional mounts, in order. */
  mounts?: Mount[];
  /** Lifecycle hooks. */
  hooks?: Hooks;
  /** Arbitrary metadata. */
  annotations?: Record<string, string>;
  /** Linux-specific configuration. */
  linux?: Linux;
}

/** `process`. */
export interface Process {
  /** Attach a pseudo-terminal. */
  terminal?: boolean;
  /** Initial size of that terminal. */
  consoleSize?: { height: number; width: number };
  /** Identity of the process. */
  user: User;
  /** argv; `args[0]` is looked up in the container's `PATH` when it has no slash. */
  args?: string[];
  /** `NAME=VALUE` list. */
  env?: string[];
  /** Absolute working directory. */
  cwd: string;
  /** Capability sets, by name (`CAP_CHOWN`). */
  capabilities?: Capabilities;
  /** setrlimit(2) values. */
  rlimits?: Rlimit[];
  /** prctl(PR_SET_NO_NEW_PRIVS). */
  noNewPrivileges?: boolean;
  /** AppArmor profile (trun refuses a non-empty one). */
  apparmorProfile?: string;
  /** /proc/self/oom_score_adj. */
  oomScoreAdj?: number;
  /** SELinux label (trun refuses a non-empty one). */
  selinuxLabel?: string;
}

/** `process.user`. */
export interface User {
  /** uid in the container. */
  uid: number;
  /** gid in the container. */
  gid: number;
  /** umask(2) of the process. */
  umask?: number;
  /** Supplementary groups. */
  additionalGids?: number[];
}

/** `process.capabilities`. */
export interface Capabilities {
  /** Bounding set. */
  bounding?: string[];
  /** Effective set. */
  effective?: string[];
  /** Inheritable set. */
  inheritable?: string[];
  /** Permitted set. */
  permitted?: string[];
  /** Ambient set. */
  ambient?: string[];
}

/** One `process.rlimits` entry. */
export interface Rlimit {
  /** `RLIMIT_NOFILE`, … */
  type: string;
  /** Hard limit. */
  hard: number;
  /** Soft limit. */
  soft: number;
}

/** `root`. */
export interface Root {
  /** The root filesystem, absolute or relative to the bundle. */
  path: string;
  /** Mount it read-only. */
  readonly?: boolean;
}

/** One `mounts` entry. */
export interface Mount {
  /** Absolute path in the container. */
  destination: string;
  /** Filesystem type (`proc`, `tmpfs`, `bind`, `none` with a bind option…). */
  type?: string;
  /** Device name, host path of a bind, or a filesystem-specific string. */
  source?: string;
  /** mount(8) options (`ro`, `nosuid`, `rbind`, `mode=755`, …). */
  options?: string[];
}

/** One hook. */
export interface Hook {
  /** Absolute path of the program. */
  path: string;
  /** argv, `args[0]` included. */
  args?: string[];
  /** `NAME=VALUE` list. */
  env?: string[];
  /** Seconds before the hook is killed. */
  timeout?: number;
}

/** `hooks`. */
export interface Hooks {
  /** Deprecated alias of createRuntime, run after them. */
  prestart?: Hook[];
  /** In the runtime namespace, after the namespaces exist, before pivot_root. */
  createRuntime?: Hook[];
  /** In the container namespace, before pivot_root. */
  createContainer?: Hook[];
  /** In the container namespace, at start, before the user process runs. */
  startContainer?: Hook[];
  /** In the runtime namespace, after the user process started. */
  poststart?: Hook[];
  /** In the runtime namespace, after the container is deleted. */
  poststop?: Hook[];
}

/** The namespace types of `linux.namespaces`. */
export type NamespaceType =
  | "pid"
  | "network"
  | "mount"
  | "ipc"
  | "uts"
  | "user"
  | "cgroup"
  | "time";

/** One `linux.namespaces` entry. */
export interface Namespace {
  /** Which namespace. */
  type: NamespaceType;
  /** Join this existing namespace (`/proc/PID/ns/net`) instead of creating one. */
  path?: string;
}

/** One `linux.uidMappings`/`gidMappings` entry. */
export interface IdMappingEntry {
  /** First id in the container. */
  containerID: number;
  /** First id on the host. */
  hostID: number;
  /** Number of ids. */
  size: number;
}

/** One `linux.devices` entry. */
export interface Device {
  /** `c`, `b`, `u` or `p`. */
  type: string;
  /** Path in the container. */
  path: string;
  /** Major number. */
  major?: number;
  /** Minor number. */
  minor?: number;
  /** Permission bits. */
  fileMode?: number;
  /** Owner in the container. */
  uid?: number;
  /** Group in the container. */
  gid?: number;
}

/** A seccomp action (config-linux.md "Seccomp"); `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`. */
export type SeccompAction =
  | "SCMP_ACT_KILL"
  | "SCMP_ACT_KILL_PROCESS"
  | "SCMP_ACT_KILL_THREAD"
  | "SCMP_ACT_TRAP"
  | "SCMP_ACT_ERRNO"
  | "SCMP_ACT_TRACE"
  | "SCMP_ACT_ALLOW"
  | "SCMP_ACT_LOG"
  | "SCMP_ACT_NOTIFY";

/** How a seccomp rule compares an argument (unsigned 64-bit). */
export type SeccompOperator =
  | "SCMP_CMP_NE"
  | "SCMP_CMP_LT"
  | "SCMP_CMP_LE"
  | "SCMP_CMP_EQ"
  | "SCMP_CMP_GE"
  | "SCMP_CMP_GT"
  | "SCMP_CMP_MASKED_EQ";

/** The seccomp actions of the OCI spec (and of Docker's profile format). */
export const SECCOMP_ACTIONS: readonly SeccompAction[] = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
];

/** The argument comparisons of the OCI spec (and of Docker's profile format). */
export const SECCOMP_OPERATORS: readonly SeccompOperator[] = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
];

/** One argument condition: `args[index] op value` (MASKED_EQ: `args[index] & value == valueTwo`). */
export interface SeccompArg {
  /** Which argument, 0–5. */
  index: number;
  /** The value compared with (the mask for MASKED_EQ). */
  value: number;
  /** The second value (the datum for MASKED_EQ). */
  valueTwo?: number;
  /** The comparison. */
  op: SeccompOperator;
}

/** One rule of `linux.seccomp.syscalls`: all `args` must hold for `action` to apply. */
export interface SeccompSyscall {
  /** System call names. */
  names: string[];
  /** What happens when the rule matches. */
  action: SeccompAction;
  /** The errno of SCMP_ACT_ERRNO (default EPERM) or the data of SCMP_ACT_TRACE. */
  errnoRet?: number;
  /** Conditions on the arguments, all of which must hold. */
  args?: SeccompArg[];
}

/** `linux.seccomp`. */
export interface Seccomp {
  /** Action when no rule matches. */
  defaultAction: SeccompAction;
  /** The errno of a default SCMP_ACT_ERRNO (default EPERM). */
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names the filter accepts (empty: the native one). */
  architectures?: string[];
  /** SECCOMP_FILTER_FLAG_* names. */
  flags?: string[];
  /** Rules. */
  syscalls?: SeccompSyscall[];
}

/** `linux.resources` (cgroup limits; the shape follows config-linux.md). */
export interface Resources {
  /** Device cgroup rules. */
  devices?: { allow: boolean; type?: string; major?: number; minor?: number; access?: string }[];
  /** Memory limits. */
  memory?: {
    limit?: number;
    reservation?: number;
    swap?: number;
    kernel?: number;
    kernelTCP?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
    useHierarchy?: boolean;
  };
  /** CPU limits. */
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
    idle?: number;
  };
  /** Pids limit. */
  pids?: { limit: number };
  /** Block I/O. */
  blockIO?: Record<string, unknown>;
  /** Huge pages. */
  hugepageLimits?: { pageSize: string; limit: number }[];
  /** Network classes. */
  network?: Record<string, unknown>;
  /** Raw cgroup v2 files. */
  unified?: Record<string, string>;
  /** RDMA. */
  rdma?: Record<string, unknown>;
}

/** `linux`. */
export interface Linux {
  /** Namespaces to create or join. */
  namespaces?: Namespace[];
  /** uid mappings of a new user namespace. */
  uidMappings?: IdMappingEntry[];
  /** gid mappings of a new user namespace. */
  gidMappings?: IdMappingEntry[];
  /** Device nodes to provide. */
  devices?: Device[];
  /** cgroup path (absolute, relative, or `slice:prefix:name` with systemd). */
  cgroupsPath?: string;
  /** cgroup limits. */
  resources?: Resources;
  /** `/proc/sys` settings. */
  sysctl?: Record<string, string>;
  /** seccomp filter. */
  seccomp?: Seccomp;
  /** Propagation of the root mount (`private`, `rslave`, …). */
  rootfsPropagation?: string;
  /** Paths hidden from the container. */
  maskedPaths?: string[];
  /** Paths made read-only. */
  readonlyPaths?: string[];
  /** SELinux mount label (trun refuses a non-empty one). */
  mountLabel?: string;
  /** Other Linux fields trun does not implement (refused when present). */
  [key: string]: unknown;
}

/** The state a runtime reports (`runc state`) and hooks read on stdin. */
export interface State {
  /** Spec version. */
  ociVersion: string;
  /** Container id. */
  id: string;
  /** Lifecycle status. */
  status: "creating" | "created" | "running" | "paused" | "stopped";
  /** Host pid of the container process (absent once stopped). */
  pid?: number;
  /** Absolute bundle directory. */
  bundle: string;
  /** The config's annotations. */
  annotations?: Record<string, string>;
}
