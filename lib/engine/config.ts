/**
 * From a `config.json` to the engine's `ContainerConfig`: every field the
 * engine honours is read and checked here, and every field it does not
 * honour is refused with an error naming it (runc's specconv + validate
 * steps). Pure: the document comes in as parsed JSON, nothing is read from
 * the host.
 */
import { CAPABILITIES, RLIMITS } from "../../ffi/syscalls.ts";
import type { IdRange } from "../runtime/idmap.ts";
import { normalizePath } from "../util/path.ts";
import type { Hook, Hooks, NamespaceType, Resources } from "../spec/types.ts";
import { type SeccompPlan, seccompPlan } from "./seccomp_config.ts";

/** A config.json the engine cannot run; the message names the field. */
export class SpecError extends Error {
  /** Builds the error for `field`. */
  constructor(field: string, message: string) {
    super(`config.json: ${field}: ${message}`);
    this.name = "SpecError";
  }
}

/** Mount attributes (mount_setattr(2) MOUNT_ATTR_*), by meaning. */
export interface MountAttrs {
  /** Read-only. */
  readOnly?: boolean;
  /** Ignore setuid bits. */
  nosuid?: boolean;
  /** No device access. */
  nodev?: boolean;
  /** No execution. */
  noexec?: boolean;
  /** Access-time updates. */
  atime?: "relatime" | "noatime" | "strictatime";
  /** No directory access-time updates. */
  nodiratime?: boolean;
}

/** Mount propagation types (mount_namespaces(7)). */
export type Propagation = "private" | "shared" | "slave" | "unbindable";

/** One mount, decided. */
export type MountPlan =
  | {
    kind: "fs";
    /** Filesystem type for fsopen(2). */
    fstype: string;
    /** Absolute path in the container. */
    target: string;
    /** fsconfig(2) options in order; a null value sets a flag option. */
    options: [string, string | null][];
    /** Mount attributes. */
    attrs: MountAttrs;
    /** Propagation set after the mount, if any. */
    propagation?: { type: Propagation; recursive: boolean };
  }
  | {
    kind: "bind";
    /** Absolute host path. */
    source: string;
    /** Absolute path in the container. */
    target: string;
    /** Bind the whole tree under source (rbind). */
    recursive: boolean;
    /** Attributes set on the new mount(s). */
    attrs: MountAttrs;
    /** Propagation set after the mount, if any. */
    propagation?: { type: Propagation; recursive: boolean };
  };

/** A device node to provide (bind-mounted from the host path of the same name). */
export interface DevicePlan {
  /** Path in the container. */
  path: string;
  /** `c` or `b` (`u` is `c`). */
  type: "c" | "b";
  /** Major number. */
  major: number;
  /** Minor number. */
  minor: number;
  /** Permission bits when trun creates the node (default 0666). */
  mode?: number;
  /** Owner in the container when trun creates the node (default 0). */
  uid?: number;
  /** Group in the container when trun creates the node (default 0). */
  gid?: number;
}

/** The five capability sets, as numbers (capabilities(7)). */
export interface CapabilitySets {
  bounding: number[];
  effective: number[];
  inheritable: number[];
  permitted: number[];
  ambient: number[];
}

/** One resource limit (setrlimit(2)). */
export interface RlimitPlan {
  /** Name, for messages. */
  name: string;
  /** RLIMIT_* number. */
  resource: number;
  /** Soft limit. */
  soft: bigint;
  /** Hard limit. */
  hard: bigint;
}

/** The process to run, decided. */
export interface ProcessConfig {
  /** argv. */
  args: string[];
  /** Environment. */
  env: string[];
  /** Absolute working directory. */
  cwd: string;
  /** uid. */
  uid: number;
  /** gid. */
  gid: number;
  /** umask, when set. */
  umask?: number;
  /** Supplementary groups. */
  additionalGids: number[];
  /** A pseudo-terminal. */
  terminal: boolean;
  /** Its size. */
  consoleSize?: { rows: number; columns: number };
  /** Capability sets. */
  capabilities: CapabilitySets;
  /** Resource limits. */
  rlimits: RlimitPlan[];
  /** no_new_privs. */
  noNewPrivileges: boolean;
  /** oom_score_adj, when set. */
  oomScoreAdj?: number;
}

/** The namespace types the engine knows, in the order runc joins them. */
export const NAMESPACE_TYPES: readonly NamespaceType[] = [
  "user",
  "ipc",
  "uts",
  "network",
  "pid",
  "mount",
  "cgroup",
];

/**
 * Whether the container's first process must join namespaces before it
 * creates its own (runc's nsexec order: setns, then unshare, then a fork
 * into the PID namespace): when it joins a user or PID namespace, or joins
 * any namespace while making a new user namespace (which would otherwise
 * own nothing it joined). Otherwise one clone(2) creates everything and the
 * joins follow, the faster path `trun run` takes.
 */
export function joinsFirst(c: Pick<ContainerConfig, "newNamespaces" | "joinNamespaces">): boolean {
  return c.joinNamespaces.some((j) => j.type === "user" || j.type === "pid") ||
    (c.newNamespaces.includes("user") && c.joinNamespaces.length > 0);
}

/** Everything the engine needs to create one container. */
export interface ContainerConfig {
  /** Absolute root filesystem path. */
  rootPath: string;
  /** Mount the root read-only. */
  rootReadonly: boolean;
  /** UTS hostname, when set. */
  hostname?: string;
  /** NIS domain name, when set. */
  domainname?: string;
  /** New namespaces. */
  newNamespaces: NamespaceType[];
  /** Namespaces to join: type → path. */
  joinNamespaces: { type: NamespaceType; path: string }[];
  /** The new user namespace's mapping (present iff one is created). */
  idMapping?: { uid: IdRange[]; gid: IdRange[] };
  /** Mounts in order. */
  mounts: MountPlan[];
  /** Device nodes. */
  devices: DevicePlan[];
  /** Whether /dev is a tmpfs of ours (default devices and /dev links are then added). */
  setupDev: boolean;
  /** Paths to hide. */
  maskedPaths: string[];
  /** Paths to make read-only. */
  readonlyPaths: string[];
  /** /proc/sys settings. */
  sysctl: [string, string][];
  /** Propagation of "/" in the container. */
  rootfsPropagation: { type: Propagation; recursive: boolean };
  /** The process. */
  process: ProcessConfig;
  /** The seccomp filter of every process of the container (`linux.seccomp`). */
  seccomp?: SeccompPlan;
  /** cgroup path, when set. */
  cgroupsPath?: string;
  /** Whether the spec asks for resource limits (not only device rules). */
  hasResourceLimits: boolean;
  /** The limits, as the spec gives them (see cgroup.ts). */
  resources?: Resources;
  /** Hooks. */
  hooks: Required<Hooks>;
  /** Annotations. */
  annotations: Record<string, string>;
  /** What the engine will not do as asked, for one warning line each (runc warns alike). */
  warnings: string[];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Refuses keys of `obj` not in `known`. */
function onlyKnown(obj: Json, known: readonly string[], where: string, why?: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) {
      throw new SpecError(
        where ? `${where}.${k}` : k,
        why ?? "not supported by trun; remove it or use another runtime",
      );
    }
  }
}

/** `table[key]` for the table's own keys only (never `toString` or `constructor`). */
function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

function bool(v: unknown, field: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new SpecError(field, "must be true or false");
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== "string") throw new SpecError(field, "must be a string");
  return v;
}

function optStr(v: unknown, field: string): string | undefined {
  return v === undefined ? undefined : str(v, field);
}

function int(v: unknown, field: string, min = 0, max = 0xffffffff): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new SpecError(field, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function arrayOf(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw new SpecError(field, "must be an array");
  return v;
}

function strList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError(field, "must be an array of strings");
  return v.map((x, i) => str(x, `${field}[${i}]`));
}

function absolute(path: string, field: string): string {
  if (!path.startsWith("/")) throw new SpecError(field, `"${path}" must be an absolute path`);
  return normalizePath(path);
}

function resolveIn(bundle: string, path: string): string {
  return path.startsWith("/") ? normalizePath(path) : normalizePath(`${bundle}/${path}`);
}

function capSet(v: unknown, field: string): number[] {
  return strList(v, field).map((name, i) => {
    const n = own(CAPABILITIES, name.toUpperCase());
    if (n === undefined) throw new SpecError(`${field}[${i}]`, `unknown capability "${name}"`);
    return n;
  });
}

const FLAG_OPTIONS: Record<string, (a: MountAttrs) => void> = {
  ro: (a) => a.readOnly = true,
  rw: (a) => a.readOnly = false,
  nosuid: (a) => a.nosuid = true,
  suid: (a) => a.nosuid = false,
  nodev: (a) => a.nodev = true,
  dev: (a) => a.nodev = false,
  noexec: (a) => a.noexec = true,
  exec: (a) => a.noexec = false,
  relatime: (a) => a.atime = "relatime",
  norelatime: (a) => delete a.atime,
  noatime: (a) => a.atime = "noatime",
  atime: (a) => delete a.atime,
  strictatime: (a) => a.atime = "strictatime",
  nostrictatime: (a) => delete a.atime,
  nodiratime: (a) => a.nodiratime = true,
  diratime: (a) => a.nodiratime = false,
  // The defaults: nothing to do.
  async: () => {},
  nomand: () => {},
  defaults: () => {},
};

const PROPAGATION_OPTIONS: Record<string, { type: Propagation; recursive: boolean }> = {
  private: { type: "private", recursive: false },
  rprivate: { type: "private", recursive: true },
  shared: { type: "shared", recursive: false },
  rshared: { type: "shared", recursive: true },
  slave: { type: "slave", recursive: false },
  rslave: { type: "slave", recursive: true },
  unbindable: { type: "unbindable", recursive: false },
  runbindable: { type: "unbindable", recursive: true },
};

const FS_TYPES = new Set(["proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2"]);

/** Decides one `mounts` entry. */
export function mountPlan(m: unknown, i: number, bundle: string, newCgroupNs: boolean): MountPlan {
  const field = `mounts[${i}]`;
  if (!isObject(m)) throw new SpecError(field, "must be an object");
  onlyKnown(m, ["destination", "type", "source", "options", "uidMappings", "gidMappings"], field);
  if (m.uidMappings !== undefined || m.gidMappings !== undefined) {
    throw new SpecError(`${field}.uidMappings`, "idmapped mounts are not supported by trun");
  }
  const target = absolute(str(m.destination, `${field}.destination`), `${field}.destination`);
  const type = optStr(m.type, `${field}.type`) ?? "";
  const source = optStr(m.source, `${field}.source`) ?? "";
  const attrs: MountAttrs = {};
  let bind: "bind" | "rbind" | undefined = type === "bind" ? "bind" : undefined;
  let propagation: MountPlan["propagation"];
  const data: [string, string | null][] = [];
  for (const [j, o] of strList(m.options, `${field}.options`).entries()) {
    if (o === "bind" || o === "rbind") {
      bind = bind === "rbind" ? "rbind" : o;
      if (type === "bind" && o === "rbind") bind = "rbind";
    } else if (own(FLAG_OPTIONS, o)) own(FLAG_OPTIONS, o)!(attrs);
    else if (own(PROPAGATION_OPTIONS, o)) propagation = own(PROPAGATION_OPTIONS, o);
    else if (/^[a-z_]+(=.*)?$/.test(o) && !["sync", "remount", "mand", "dirsync"].includes(o)) {
      const eq = o.indexOf("=");
      data.push(eq < 0 ? [o, null] : [o.slice(0, eq), o.slice(eq + 1)]);
    } else {
      throw new SpecError(`${field}.options[${j}]`, `mount option "${o}" is not supported`);
    }
  }
  if (type === "bind" && bind === undefined) bind = "bind";
  const prop = propagation ? { propagation } : {};
  if (bind) {
    if (data.length > 0) {
      throw new SpecError(
        `${field}.options`,
        `"${
          data[0]![0]
        }" is not a bind mount option (a bind mount takes ro, nosuid, nodev, noexec, atime and propagation options)`,
      );
    }
    if (source === "") throw new SpecError(`${field}.source`, "a bind mount needs a source");
    return {
      kind: "bind",
      source: resolveIn(bundle, source),
      target,
      recursive: bind === "rbind",
      attrs,
      ...prop,
    };
  }
  if (type === "cgroup" || type === "cgroup2") {
    // In a cgroup namespace of its own the container mounts a fresh cgroup2
    // (it sees its own subtree); otherwise it gets the host's hierarchy,
    // read-only, as rootless runc gives it.
    if (newCgroupNs) return { kind: "fs", fstype: "cgroup2", target, options: [], attrs, ...prop };
    return {
      kind: "bind",
      source: "/sys/fs/cgroup",
      target,
      recursive: true,
      attrs: { ...attrs, readOnly: true },
      ...prop,
    };
  }
  if (!FS_TYPES.has(type)) {
    throw new SpecError(
      `${field}.type`,
      `"${type}" is not supported (trun mounts bind, proc, sysfs, tmpfs, devpts, mqueue and cgroup)`,
    );
  }
  return { kind: "fs", fstype: type, target, options: data, attrs, ...prop };
}

function idRanges(v: unknown, field: string): IdRange[] {
  if (!Array.isArray(v)) throw new SpecError(field, "must be an array");
  if (v.length === 0) throw new SpecError(field, "a new user namespace needs at least one range");
  return v.map((r, i) => {
    const f = `${field}[${i}]`;
    if (!isObject(r)) throw new SpecError(f, "must be an object");
    onlyKnown(r, ["containerID", "hostID", "size"], f);
    return {
      inside: int(r.containerID, `${f}.containerID`),
      outside: int(r.hostID, `${f}.hostID`),
      count: int(r.size, `${f}.size`, 1),
    };
  });
}

function hookList(v: unknown, field: string): Hook[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError(field, "must be an array");
  return v.map((h, i) => {
    const f = `${field}[${i}]`;
    if (!isObject(h)) throw new SpecError(f, "must be an object");
    onlyKnown(h, ["path", "args", "env", "timeout"], f);
    const hook: Hook = { path: absolute(str(h.path, `${f}.path`), `${f}.path`) };
    if (h.args !== undefined) hook.args = strList(h.args, `${f}.args`);
    if (h.env !== undefined) hook.env = strList(h.env, `${f}.env`);
    if (h.timeout !== undefined) hook.timeout = int(h.timeout, `${f}.timeout`, 1);
    return hook;
  });
}

const HOOK_KINDS = [
  "prestart",
  "createRuntime",
  "createContainer",
  "startContainer",
  "poststart",
  "poststop",
] as const;

function hooksOf(v: unknown): Required<Hooks> {
  const out = Object.fromEntries(HOOK_KINDS.map((k) => [k, [] as Hook[]])) as Required<Hooks>;
  if (v === undefined) return out;
  if (!isObject(v)) throw new SpecError("hooks", "must be an object");
  onlyKnown(v, HOOK_KINDS, "hooks");
  for (const k of HOOK_KINDS) out[k] = hookList(v[k], `hooks.${k}`);
  return out;
}

/** Checks and decides a `process` object (of config.json, or of `exec --process`). */
export function processConfig(v: unknown): ProcessConfig {
  if (!isObject(v)) throw new SpecError("process", "is required to create a container");
  onlyKnown(v, [
    "terminal",
    "consoleSize",
    "user",
    "args",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
  ], "process");
  for (const k of ["apparmorProfile", "selinuxLabel"] as const) {
    if (v[k] !== undefined && v[k] !== "") {
      throw new SpecError(
        `process.${k}`,
        "trun does not apply AppArmor or SELinux labels; leave it empty",
      );
    }
  }
  const args = strList(v.args, "process.args");
  if (args.length === 0) throw new SpecError("process.args", "must name the program to run");
  const user = v.user;
  if (!isObject(user)) throw new SpecError("process.user", "is required");
  onlyKnown(user, ["uid", "gid", "umask", "additionalGids", "username"], "process.user");
  if (user.username !== undefined && user.username !== "") {
    throw new SpecError("process.user.username", "is for Windows; use uid and gid");
  }
  const caps = v.capabilities;
  if (caps !== undefined && !isObject(caps)) {
    throw new SpecError("process.capabilities", "must be an object");
  }
  if (caps) {
    onlyKnown(
      caps,
      ["bounding", "effective", "inheritable", "permitted", "ambient"],
      "process.capabilities",
    );
  }
  const rlimits = v.rlimits === undefined ? [] : v.rlimits;
  if (!Array.isArray(rlimits)) throw new SpecError("process.rlimits", "must be an array");
  const out: ProcessConfig = {
    args,
    env: strList(v.env, "process.env"),
    cwd: absolute(str(v.cwd, "process.cwd"), "process.cwd"),
    uid: int(user.uid, "process.user.uid"),
    gid: int(user.gid, "process.user.gid"),
    additionalGids:
      (user.additionalGids === undefined
        ? []
        : arrayOf(user.additionalGids, "process.user.additionalGids"))
        .map((g, i) => int(g, `process.user.additionalGids[${i}]`)),
    terminal: bool(v.terminal, "process.terminal"),
    capabilities: {
      bounding: capSet(caps?.bounding, "process.capabilities.bounding"),
      effective: capSet(caps?.effective, "process.capabilities.effective"),
      inheritable: capSet(caps?.inheritable, "process.capabilities.inheritable"),
      permitted: capSet(caps?.permitted, "process.capabilities.permitted"),
      ambient: capSet(caps?.ambient, "process.capabilities.ambient"),
    },
    rlimits: rlimits.map((r, i) => {
      const f = `process.rlimits[${i}]`;
      if (!isObject(r)) throw new SpecError(f, "must be an object");
      onlyKnown(r, ["type", "soft", "hard"], f);
      const name = str(r.type, `${f}.type`);
      const resource = own(RLIMITS, name);
      if (resource === undefined) throw new SpecError(`${f}.type`, `unknown rlimit "${name}"`);
      const limit = (x: unknown, k: string) => {
        if (typeof x !== "number" || x < 0 || !Number.isInteger(x)) {
          throw new SpecError(`${f}.${k}`, "must be a non-negative integer");
        }
        // JSON numbers above 2^53 lose precision; RLIM_INFINITY is 2^64-1.
        return x >= 2 ** 63 ? 0xffffffffffffffffn : BigInt(x);
      };
      const soft = limit(r.soft, "soft"), hard = limit(r.hard, "hard");
      if (soft > hard) throw new SpecError(f, "soft limit is above the hard limit");
      return { name, resource, soft, hard };
    }),
    noNewPrivileges: bool(v.noNewPrivileges, "process.noNewPrivileges"),
  };
  if (user.umask !== undefined) out.umask = int(user.umask, "process.user.umask", 0, 0o777);
  if (v.consoleSize !== undefined) {
    const c = v.consoleSize;
    if (!isObject(c)) throw new SpecError("process.consoleSize", "must be an object");
    onlyKnown(c, ["height", "width"], "process.consoleSize");
    out.consoleSize = {
      rows: int(c.height, "process.consoleSize.height", 0, 65535),
      columns: int(c.width, "process.consoleSize.width", 0, 65535),
    };
  }
  if (v.oomScoreAdj !== undefined) {
    out.oomScoreAdj = int(v.oomScoreAdj, "process.oomScoreAdj", -1000, 1000);
  }
  return out;
}

const NS_ALIASES: Record<string, NamespaceType> = {
  pid: "pid",
  network: "network",
  net: "network",
  mount: "mount",
  ipc: "ipc",
  uts: "uts",
  user: "user",
  cgroup: "cgroup",
};

/** Default devices every container with a tmpfs /dev gets (runc's list). */
export const DEFAULT_DEVICES: readonly DevicePlan[] = [
  { path: "/dev/null", type: "c", major: 1, minor: 3 },
  { path: "/dev/zero", type: "c", major: 1, minor: 5 },
  { path: "/dev/full", type: "c", major: 1, minor: 7 },
  { path: "/dev/random", type: "c", major: 1, minor: 8 },
  { path: "/dev/urandom", type: "c", major: 1, minor: 9 },
  { path: "/dev/tty", type: "c", major: 5, minor: 0 },
];

/**
 * Checks `spec` and decides everything the engine does with it. `bundle`
 * is the absolute bundle directory (relative paths are resolved in it).
 */
export function containerConfig(spec: unknown, bundle: string): ContainerConfig {
  if (!isObject(spec)) throw new SpecError("(document)", "must be a JSON object");
  onlyKnown(spec, [
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
  ], "");
  const version = str(spec.ociVersion, "ociVersion");
  if (!/^1\.\d+\.\d+/.test(version)) {
    throw new SpecError("ociVersion", `"${version}" is not a 1.x runtime spec`);
  }
  const root = spec.root;
  if (!isObject(root)) throw new SpecError("root", "is required");
  onlyKnown(root, ["path", "readonly"], "root");
  const linux = spec.linux === undefined ? {} : spec.linux;
  if (!isObject(linux)) throw new SpecError("linux", "must be an object");
  onlyKnown(linux, [
    "namespaces",
    "uidMappings",
    "gidMappings",
    "devices",
    "cgroupsPath",
    "resources",
    "sysctl",
    "seccomp",
    "rootfsPropagation",
    "maskedPaths",
    "readonlyPaths",
    "mountLabel",
  ], "linux");
  const seccomp = linux.seccomp === undefined || linux.seccomp === null
    ? undefined
    : seccompPlan(linux.seccomp);
  if (linux.mountLabel !== undefined && linux.mountLabel !== "") {
    throw new SpecError("linux.mountLabel", "trun does not apply SELinux labels; leave it empty");
  }

  const newNamespaces: NamespaceType[] = [];
  const joinNamespaces: { type: NamespaceType; path: string }[] = [];
  const nsList = linux.namespaces === undefined ? [] : linux.namespaces;
  if (!Array.isArray(nsList)) throw new SpecError("linux.namespaces", "must be an array");
  nsList.forEach((n, i) => {
    const f = `linux.namespaces[${i}]`;
    if (!isObject(n)) throw new SpecError(f, "must be an object");
    onlyKnown(n, ["type", "path"], f);
    const type = own(NS_ALIASES, str(n.type, `${f}.type`));
    if (!type) throw new SpecError(`${f}.type`, `namespace type "${n.type}" is not supported`);
    if (newNamespaces.includes(type) || joinNamespaces.some((j) => j.type === type)) {
      throw new SpecError(`${f}.type`, `the ${type} namespace is listed twice`);
    }
    const path = optStr(n.path, `${f}.path`);
    if (path) joinNamespaces.push({ type, path: absolute(path, `${f}.path`) });
    else newNamespaces.push(type);
  });
  if (!newNamespaces.includes("mount")) {
    throw new SpecError("linux.namespaces", "trun needs a new mount namespace for the container");
  }
  // Joined namespaces are entered user first (the others may belong to it).
  joinNamespaces.sort((a, b) => NAMESPACE_TYPES.indexOf(a.type) - NAMESPACE_TYPES.indexOf(b.type));

  let idMapping: ContainerConfig["idMapping"];
  if (newNamespaces.includes("user")) {
    if (linux.uidMappings === undefined || linux.gidMappings === undefined) {
      throw new SpecError(
        "linux.uidMappings",
        "a new user namespace needs uidMappings and gidMappings",
      );
    }
    idMapping = {
      uid: idRanges(linux.uidMappings, "linux.uidMappings"),
      gid: idRanges(linux.gidMappings, "linux.gidMappings"),
    };
  } else if (linux.uidMappings !== undefined || linux.gidMappings !== undefined) {
    throw new SpecError("linux.uidMappings", "mappings need a new user namespace");
  }

  const newCgroupNs = newNamespaces.includes("cgroup");
  const mountsIn = spec.mounts === undefined ? [] : spec.mounts;
  if (!Array.isArray(mountsIn)) throw new SpecError("mounts", "must be an array");
  const mounts = mountsIn.map((m, i) => mountPlan(m, i, bundle, newCgroupNs));
  const setupDev = mounts.some((m) =>
    m.kind === "fs" && m.target === "/dev" && m.fstype === "tmpfs"
  );

  const devices: DevicePlan[] = setupDev ? [...DEFAULT_DEVICES] : [];
  const devIn = linux.devices === undefined ? [] : linux.devices;
  if (!Array.isArray(devIn)) throw new SpecError("linux.devices", "must be an array");
  devIn.forEach((d, i) => {
    const f = `linux.devices[${i}]`;
    if (!isObject(d)) throw new SpecError(f, "must be an object");
    onlyKnown(d, ["type", "path", "major", "minor", "fileMode", "uid", "gid"], f);
    const type = str(d.type, `${f}.type`);
    if (type !== "c" && type !== "b" && type !== "u") {
      throw new SpecError(`${f}.type`, `device type "${type}" is not supported (c, b or u)`);
    }
    const path = absolute(str(d.path, `${f}.path`), `${f}.path`);
    const dev: DevicePlan = {
      path,
      type: type === "b" ? "b" : "c",
      major: int(d.major, `${f}.major`),
      minor: int(d.minor, `${f}.minor`),
      ...(d.fileMode !== undefined ? { mode: int(d.fileMode, `${f}.fileMode`, 0, 0o7777) } : {}),
      ...(d.uid !== undefined ? { uid: int(d.uid, `${f}.uid`) } : {}),
      ...(d.gid !== undefined ? { gid: int(d.gid, `${f}.gid`) } : {}),
    };
    const k = devices.findIndex((x) => x.path === path);
    if (k >= 0) devices[k] = dev;
    else devices.push(dev);
  });

  const sysctlIn = linux.sysctl === undefined ? {} : linux.sysctl;
  if (!isObject(sysctlIn)) throw new SpecError("linux.sysctl", "must be an object");
  const sysctl = Object.entries(sysctlIn).map(([k, v]): [string, string] => {
    if (!/^[a-zA-Z0-9_.\-/]+$/.test(k) || k.includes("..")) {
      throw new SpecError(`linux.sysctl.${k}`, "is not a sysctl name");
    }
    return [k, str(v, `linux.sysctl.${k}`)];
  });

  const propText = optStr(linux.rootfsPropagation, "linux.rootfsPropagation");
  let rootfsPropagation = { type: "slave" as Propagation, recursive: true };
  if (propText !== undefined && propText !== "") {
    const p = own(PROPAGATION_OPTIONS, propText);
    if (!p) {
      throw new SpecError("linux.rootfsPropagation", `"${propText}" is not a propagation type`);
    }
    rootfsPropagation = p;
  }

  const resources = linux.resources;
  if (resources !== undefined && !isObject(resources)) {
    throw new SpecError("linux.resources", "must be an object");
  }
  const hasResourceLimits = resources !== undefined &&
    Object.keys(resources).some((k) => k !== "devices");
  const warnings: string[] = [];
  const process = processConfig(spec.process);
  const caps = process.capabilities;
  const notRaisable = caps.ambient.filter((c) =>
    !caps.permitted.includes(c) || !caps.inheritable.includes(c)
  );
  if (notRaisable.length > 0) {
    // The kernel raises an ambient capability only when it is permitted and
    // inheritable; runc warns and goes on, and so does trun.
    caps.ambient = caps.ambient.filter((c) => !notRaisable.includes(c));
    warnings.push(
      `process.capabilities.ambient: ${
        notRaisable.map(capabilityName).join(", ")
      } not in the permitted and inheritable sets: cannot be raised, left out`,
    );
  }

  const annotationsIn = spec.annotations === undefined ? {} : spec.annotations;
  if (!isObject(annotationsIn)) throw new SpecError("annotations", "must be an object");
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotationsIn)) annotations[k] = str(v, `annotations.${k}`);

  const hostname = optStr(spec.hostname, "hostname");
  const domainname = optStr(spec.domainname, "domainname");
  if ((hostname || domainname) && !newNamespaces.includes("uts")) {
    throw new SpecError(hostname ? "hostname" : "domainname", "needs a new uts namespace");
  }
  const cgroupsPath = optStr(linux.cgroupsPath, "linux.cgroupsPath");
  return {
    rootPath: resolveIn(bundle, str(root.path, "root.path")),
    rootReadonly: bool(root.readonly, "root.readonly"),
    ...(hostname ? { hostname } : {}),
    ...(domainname ? { domainname } : {}),
    newNamespaces,
    joinNamespaces,
    ...(idMapping ? { idMapping } : {}),
    mounts,
    devices,
    setupDev,
    maskedPaths: strList(linux.maskedPaths, "linux.maskedPaths").map((p, i) =>
      absolute(p, `linux.maskedPaths[${i}]`)
    ),
    readonlyPaths: strList(linux.readonlyPaths, "linux.readonlyPaths").map((p, i) =>
      absolute(p, `linux.readonlyPaths[${i}]`)
    ),
    sysctl,
    rootfsPropagation,
    process,
    ...(seccomp ? { seccomp } : {}),
    ...(cgroupsPath ? { cgroupsPath } : {}),
    hasResourceLimits,
    ...(resources && hasResourceLimits ? { resources: resources as Resources } : {}),
    hooks: hooksOf(spec.hooks),
    annotations,
    warnings,
  };
}

/** The name of capability number `n` (`CAP_CHOWN`). */
function capabilityName(n: number): string {
  return Object.entries(CAPABILITIES).find(([, v]) => v === n)?.[0] ?? `capability ${n}`;
}
