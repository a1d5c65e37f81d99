/**
 * The user's mounts of `run`/`create` — `-v/--volume`, `--mount` and
 * `--tmpfs` with Docker's syntax — parsed into mount requests, and a
 * request (with its volume's source, prepared by the caller) turned into
 * an OCI `mounts` entry. Pure: which volume exists, and where its data
 * lives, is decided in lib/container/volumes.ts.
 *
 * Docker's rules followed here: `-v SRC:DST[:OPTS]` is a bind when SRC is
 * absolute and a named volume otherwise; `-v DST` alone is an anonymous
 * volume; `--mount` is a CSV of key=value fields whose type defaults to
 * volume; a tmpfs gets `rw,noexec,nosuid,nodev` before the options given;
 * no two mounts may share a destination; mounts are made parents first.
 */
import { normalizePath } from "../util/path.ts";
import type { Mount } from "./types.ts";

/** Which flag asked for a mount. */
export type MountFlag = "volume" | "mount" | "tmpfs";

/** Fields every mount request has. */
interface RequestBase {
  /** Absolute, normalised path in the container. */
  destination: string;
  /** Mounted read-only. */
  readOnly: boolean;
  /** The flag that asked for it. */
  flag: MountFlag;
  /** The flag's value as given. */
  spec: string;
  /** Docker's `Mode` in inspect's Mounts: the `-v` options as given ("z" for a volume without). */
  mode: string;
}

/** A host directory or file bound into the container. */
export interface BindRequest extends RequestBase {
  /** Discriminant. */
  type: "bind";
  /** Absolute, normalised host path. */
  source: string;
  /** The whole tree under the source (rbind), unless `bind-recursive=disabled`. */
  recursive: boolean;
  /** `bind-propagation=` or a `-v` propagation option. */
  propagation?: string;
  /** `--mount` refuses a missing source; `-v` makes the directory, as Docker does. */
  createSource: boolean;
}

/** A named or anonymous volume. */
export interface VolumeRequest extends RequestBase {
  /** Discriminant. */
  type: "volume";
  /** Its name; absent for an anonymous volume. */
  name?: string;
  /** `nocopy` / `volume-nocopy`: no copy of the image's content into an empty volume. */
  noCopy: boolean;
  /** `volume-driver=` (only `local` exists). */
  driver?: string;
  /** `volume-label=`: labels of a volume this mount creates. */
  labels: Record<string, string>;
  /** `volume-opt=`: driver options of a volume this mount creates. */
  driverOptions: Record<string, string>;
}

/** A tmpfs. */
export interface TmpfsRequest extends RequestBase {
  /** Discriminant. */
  type: "tmpfs";
  /** mount options after Docker's defaults: `size=64m`, `mode=1777`, `exec`… */
  options: string[];
  /** `tmpfs-size=` in bytes (HostConfig.Mounts). */
  sizeBytes?: number;
  /** `tmpfs-mode=` (HostConfig.Mounts). */
  fileMode?: number;
}

/** One mount the user asked for. */
export type MountRequest = BindRequest | VolumeRequest | TmpfsRequest;

/** Where a volume mount's data comes from, prepared by the caller. */
export type VolumeSource =
  /** A directory bound in: the volume's `_data`, or a bind-type volume's device. */
  | { kind: "dir"; name: string; path: string; readOnly?: boolean }
  /** A tmpfs-type volume: a tmpfs with these options. */
  | { kind: "tmpfs"; name: string; options: string[] };

/** Docker's default options of a tmpfs (`--tmpfs` and `--mount type=tmpfs`). */
export const TMPFS_DEFAULTS: readonly string[] = ["rw", "noexec", "nosuid", "nodev"];

const PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];
const TMPFS_FLAGS = new Set([
  "rw",
  "ro",
  "exec",
  "noexec",
  "suid",
  "nosuid",
  "dev",
  "nodev",
  "atime",
  "noatime",
  "relatime",
  "norelatime",
  "strictatime",
  "nostrictatime",
  "diratime",
  "nodiratime",
  "inode32",
  "inode64",
]);
const TMPFS_DATA = new Set([
  "size",
  "mode",
  "uid",
  "gid",
  "nr_inodes",
  "nr_blocks",
  "huge",
  "mpol",
]);

/** A container path: absolute, normalised, not `/`. */
function containerPath(path: string, what: (m: string) => Error): string {
  if (!path.startsWith("/")) throw what(`the container path "${path}" must be absolute`);
  const p = normalizePath(path);
  if (p === "/") throw what(`the container path cannot be "/"`);
  return p;
}

/**
 * Parses `-v SRC:DST[:OPTS]` or `-v DST`. SRC absolute: a bind (options
 * `ro`, `rw`, a propagation, `z`/`Z` accepted and ignored); otherwise a
 * named volume (options `ro`, `rw`, `nocopy`, `z`/`Z`). DST alone: an
 * anonymous volume.
 */
export function parseVolume(spec: string): BindRequest | VolumeRequest {
  const bad = (m: string) =>
    Object.assign(new Error(`invalid volume "${spec}": ${m}`), { exitCode: 125 });
  const parts = spec.split(":");
  if (parts.length === 1) {
    if (spec === "") throw bad("expected [SOURCE:]CONTAINER-PATH[:OPTIONS]");
    return {
      type: "volume",
      destination: containerPath(spec, bad),
      readOnly: false,
      noCopy: false,
      labels: {},
      driverOptions: {},
      flag: "volume",
      spec,
      mode: "",
    };
  }
  const [source, target, opts] = parts;
  if (parts.length > 3 || !source || !target) {
    throw bad("expected [SOURCE:]CONTAINER-PATH[:OPTIONS]");
  }
  const destination = containerPath(target, bad);
  const isBind = source.startsWith("/");
  if (!isBind && (source.startsWith(".") || source.includes("/"))) {
    throw bad(
      `"${source}" is neither an absolute host path nor a volume name: give the host directory's absolute path`,
    );
  }
  let readOnly = false;
  let noCopy = false;
  let propagation: string | undefined;
  const options = (opts ?? "").split(",").filter((x) => x !== "");
  for (const o of options) {
    if (o === "ro") readOnly = true;
    else if (o === "rw") readOnly = false;
    else if (o === "z" || o === "Z") continue;
    else if (o === "nocopy" && !isBind) noCopy = true;
    else if (PROPAGATIONS.includes(o) && isBind) propagation = o;
    else {
      throw bad(
        `unknown option "${o}" (expected ro or rw${
          isBind ? ", or a propagation such as rshared" : ", or nocopy"
        })`,
      );
    }
  }
  const base = { destination, readOnly, flag: "volume" as const, spec, mode: opts ?? "" };
  if (isBind) {
    return {
      ...base,
      type: "bind",
      source: normalizePath(source),
      recursive: true,
      ...(propagation ? { propagation } : {}),
      createSource: true,
    };
  }
  return {
    ...base,
    type: "volume",
    name: source,
    noCopy,
    labels: {},
    driverOptions: {},
    mode: opts || "z",
  };
}

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  return undefined;
}

/** Docker's RAMInBytes: `64m`, `1g`, `512k`, `1048576` (binary units, optional `b`/`ib`). */
export function parseByteSize(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) return undefined;
  const power = m[2] ? "kmgtp".indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.trunc(Number(m[1]) * 1024 ** power);
}

/** A `key=value` pair of a `volume-label`/`volume-opt` value. */
function keyValue(v: string, bad: (m: string) => Error, field: string): [string, string] {
  const eq = v.indexOf("=");
  if (eq <= 0) throw bad(`invalid field '${field}' must be a key=value pair`);
  return [v.slice(0, eq), v.slice(eq + 1)];
}

/**
 * Parses `--mount type=bind|volume|tmpfs,…` as Docker's CLI: `src`/`source`,
 * `dst`/`destination`/`target`, `ro`/`readonly[=BOOL]`,
 * `bind-propagation`, `bind-recursive=enabled|disabled`,
 * `bind-nonrecursive`, `volume-driver`, `volume-label`, `volume-nocopy`,
 * `volume-opt`, `tmpfs-size`, `tmpfs-mode`, `consistency` (ignored).
 */
export function parseMount(spec: string): MountRequest {
  const bad = (m: string) =>
    Object.assign(new Error(`invalid argument "${spec}" for "--mount" flag: ${m}`), {
      exitCode: 125,
    });
  let type = "volume";
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  let propagation: string | undefined;
  let recursive = true;
  let noCopy = false;
  let driver: string | undefined;
  const labels: Record<string, string> = {};
  const driverOptions: Record<string, string> = {};
  let sizeBytes: number | undefined;
  let fileMode: number | undefined;
  const used = { bind: "", volume: "", tmpfs: "" };
  for (const field of spec.split(",")) {
    if (field === "") continue;
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    const bool = () => {
      if (value === undefined) return true;
      const b = parseBool(value);
      if (b === undefined) throw bad(`invalid value for '${key}': ${value}`);
      return b;
    };
    const need = () => {
      if (value === undefined) throw bad(`invalid field '${field}' must be a key=value pair`);
      return value;
    };
    const family = key.split("-")[0]!;
    if (family === "bind" || family === "volume" || family === "tmpfs") used[family] ||= key;
    switch (key) {
      case "type":
        type = need().toLowerCase();
        break;
      case "source":
      case "src":
        source = need();
        break;
      case "target":
      case "destination":
      case "dst":
        target = need();
        break;
      case "readonly":
      case "ro":
        readOnly = bool();
        break;
      case "consistency":
        need();
        break;
      case "bind-propagation": {
        const v = need().toLowerCase();
        if (!PROPAGATIONS.includes(v)) {
          throw bad(`invalid bind-propagation "${v}": use ${PROPAGATIONS.join(", ")}`);
        }
        propagation = v;
        break;
      }
      case "bind-nonrecursive":
        recursive = !bool();
        break;
      case "bind-recursive": {
        const v = need();
        if (v !== "enabled" && v !== "disabled") {
          throw bad(`bind-recursive "${v}" is not supported by trun: use enabled or disabled`);
        }
        recursive = v === "enabled";
        break;
      }
      case "volume-driver":
        driver = need();
        break;
      case "volume-label": {
        const [k, v] = keyValue(need(), bad, field);
        labels[k] = v;
        break;
      }
      case "volume-opt": {
        const [k, v] = keyValue(need(), bad, field);
        driverOptions[k] = v;
        break;
      }
      case "volume-nocopy":
        noCopy = bool();
        break;
      case "tmpfs-size": {
        const n = parseByteSize(need());
        if (n === undefined) throw bad(`invalid tmpfs-size "${value}": give bytes, or 64m, 1g…`);
        sizeBytes = n;
        break;
      }
      case "tmpfs-mode": {
        const v = need();
        if (!/^[0-7]{1,4}$/.test(v)) throw bad(`invalid tmpfs-mode "${v}": give octal, e.g. 1777`);
        fileMode = parseInt(v, 8);
        break;
      }
      default:
        throw bad(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (type !== "bind" && type !== "volume" && type !== "tmpfs") {
    throw bad(`mount type "${type}" is not supported: use bind, volume or tmpfs`);
  }
  for (const family of ["bind", "volume", "tmpfs"] as const) {
    if (used[family] && family !== type) {
      throw bad(`cannot mix '${family}-*' options with mount type '${type}'`);
    }
  }
  if (target === undefined || target === "") throw bad("target is required");
  const config = (m: string) => bad(`invalid mount config for type "${type}": ${m}`);
  const destination = containerPath(target, config);
  const base = { destination, readOnly, flag: "mount" as const, spec, mode: "" };
  if (type === "bind") {
    if (!source) throw config("field Source must not be empty");
    if (!source.startsWith("/")) {
      throw config(`invalid mount path: '${source}' mount path must be absolute`);
    }
    return {
      ...base,
      type,
      source: normalizePath(source),
      recursive,
      ...(propagation ? { propagation } : {}),
      createSource: false,
    };
  }
  if (type === "tmpfs") {
    if (source) throw config("field Source must not be specified");
    const options = [...TMPFS_DEFAULTS];
    if (sizeBytes !== undefined) options.push(`size=${Math.trunc(sizeBytes / 1024)}k`);
    if (fileMode !== undefined) options.push(`mode=${fileMode.toString(8)}`);
    if (readOnly) options.push("ro");
    return {
      ...base,
      type,
      options,
      ...(sizeBytes !== undefined ? { sizeBytes } : {}),
      ...(fileMode !== undefined ? { fileMode } : {}),
    };
  }
  if (source !== undefined && source !== "" && source.startsWith("/")) {
    throw config(`"${source}" is a path, not a volume name: use type=bind for a host path`);
  }
  return {
    ...base,
    type,
    ...(source ? { name: source } : {}),
    noCopy,
    ...(driver !== undefined ? { driver } : {}),
    labels,
    driverOptions,
  };
}

/**
 * Parses `--tmpfs PATH[:OPTIONS]`: a tmpfs with Docker's defaults
 * (`rw,noexec,nosuid,nodev`), then the options given (`size=64m`,
 * `mode=1777`, `exec`…), later ones winning.
 */
export function parseTmpfs(spec: string): TmpfsRequest {
  const bad = (m: string) =>
    Object.assign(new Error(`invalid --tmpfs "${spec}": ${m}`), { exitCode: 125 });
  const colon = spec.indexOf(":");
  const path = colon < 0 ? spec : spec.slice(0, colon);
  const given = colon < 0 ? [] : spec.slice(colon + 1).split(",").filter((o) => o !== "");
  if (path === "") throw bad("expected PATH[:OPTIONS]");
  const destination = containerPath(path, bad);
  for (const o of given) {
    const eq = o.indexOf("=");
    const known = eq < 0 ? TMPFS_FLAGS.has(o) : TMPFS_DATA.has(o.slice(0, eq));
    if (!known) {
      throw bad(
        `unknown tmpfs option "${o}" (expected size=, mode=, uid=, gid=, nr_inodes=, ro, exec…)`,
      );
    }
  }
  let readOnly = false;
  for (const o of given) {
    if (o === "ro") readOnly = true;
    else if (o === "rw") readOnly = false;
  }
  return {
    type: "tmpfs",
    destination,
    readOnly,
    options: [...TMPFS_DEFAULTS, ...given],
    flag: "tmpfs",
    spec,
    mode: "",
  };
}

/** The mount flags of a run request. */
export interface MountFlagValues {
  /** `-v`. */
  volumes: readonly string[];
  /** `--mount`. */
  mounts?: readonly string[];
  /** `--tmpfs`. */
  tmpfs?: readonly string[];
}

/**
 * Every mount the flags ask for, in flag order (`-v`, `--mount`,
 * `--tmpfs`); two on one destination are refused, as Docker does.
 */
export function mountRequests(flags: MountFlagValues): MountRequest[] {
  const out: MountRequest[] = [
    ...flags.volumes.map(parseVolume),
    ...(flags.mounts ?? []).map(parseMount),
    ...(flags.tmpfs ?? []).map(parseTmpfs),
  ];
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.destination)) {
      throw Object.assign(new Error(`Duplicate mount point: ${r.destination}`), {
        exitCode: 125,
      });
    }
    seen.add(r.destination);
  }
  return out;
}

/** Path components of a destination (`/a/b` → 2): parents are mounted before children. */
function depth(path: string): number {
  return path.split("/").filter((c) => c !== "").length;
}

/**
 * The OCI mounts of `requests`, parents first (a stable sort by depth, as
 * Docker orders them). A volume request takes its source from `volumes`,
 * by destination; a missing one is a caller's mistake.
 */
export function ociMounts(
  requests: readonly MountRequest[],
  volumes: Readonly<Record<string, VolumeSource>>,
): Mount[] {
  const sorted = [...requests].sort((a, b) => depth(a.destination) - depth(b.destination));
  return sorted.map((r): Mount => {
    const rw = r.readOnly ? "ro" : "rw";
    if (r.type === "bind") {
      return {
        destination: r.destination,
        type: "bind",
        source: r.source,
        options: [r.recursive ? "rbind" : "bind", rw, ...(r.propagation ? [r.propagation] : [])],
      };
    }
    if (r.type === "tmpfs") {
      return { destination: r.destination, type: "tmpfs", source: "tmpfs", options: r.options };
    }
    const v = volumes[r.destination];
    if (v === undefined) {
      throw new Error(`internal error: the volume for "${r.destination}" was not prepared`);
    }
    if (v.kind === "tmpfs") {
      return {
        destination: r.destination,
        type: "tmpfs",
        source: "tmpfs",
        options: [...v.options, ...(r.readOnly ? ["ro"] : [])],
      };
    }
    return {
      destination: r.destination,
      type: "bind",
      source: v.path,
      options: ["rbind", r.readOnly || v.readOnly ? "ro" : "rw"],
    };
  });
}
