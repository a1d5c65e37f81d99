/**
 * Docker's `docker container inspect` document for a container the store
 * records: the record's fields in Docker's shape (State, Config,
 * HostConfig, GraphDriver on the container's directory), completed with
 * what the container's bundle says (environment, working directory,
 * hostname, lower layers) once it has been written.
 *
 * `inspectContainer` is pure; `containerFacts` reads the container
 * directory. The commands are in inspect.ts.
 */
import { shortId } from "./format.ts";
import { treeSize } from "./ps.ts";
import { type ContainerStatus, logPath } from "../container/status.ts";
import type { ContainerRecord, Store } from "../store/mod.ts";

/** Go's zero `time.Time`, which Docker prints for times never set. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

/** What the container directory tells beyond the record. */
export interface ContainerFacts {
  /** `store.containerDir(id)`. */
  dir: string;
  /** The overlay's lower layers, top first ([] when unknown). */
  lowers: string[];
  /** The bundle's process environment, when the bundle exists. */
  env?: string[];
  /** The bundle's working directory. */
  workingDir?: string;
  /** The bundle's hostname. */
  hostname?: string;
  /** `uid:gid` of the bundle's process, when not root. */
  user?: string;
  /** Which of `hostname`, `hosts`, `resolv.conf` trun wrote for it (in `userdata/etc`). */
  etcFiles: string[];
  /** With `--size`: bytes of the writable layer and of the image under it. */
  size?: { rw: number; rootFs: number };
}

/**
 * Docker's inspect object for `rec`, whose status now is `status` (from
 * `containerStatus`). Keys in Docker's order; what trun does not have
 * (networks, mounts, restarts) is empty or zero.
 */
export function inspectContainer(
  rec: ContainerRecord,
  status: ContainerStatus,
  facts: ContainerFacts,
): Record<string, unknown> {
  const { dir } = facts;
  const etc = (name: string) => facts.etcFiles.includes(name) ? `${dir}/userdata/etc/${name}` : "";
  const out: Record<string, unknown> = {
    Id: rec.id,
    Created: rec.created,
    Path: rec.command[0] ?? "",
    Args: rec.command.slice(1),
    State: {
      Status: status,
      Running: status === "running",
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: status === "running" ? rec.pid : 0,
      ExitCode: rec.exitCode ?? 0,
      Error: rec.error ?? "",
      StartedAt: rec.startedAt || ZERO_TIME,
      FinishedAt: rec.finishedAt || ZERO_TIME,
    },
    Image: rec.imageId,
    ResolvConfPath: etc("resolv.conf"),
    HostnamePath: etc("hostname"),
    HostsPath: etc("hosts"),
    LogPath: logPath(dir),
    Name: `/${rec.name}`,
    RestartCount: rec.restartCount ?? 0,
    Driver: "overlay",
    Platform: "linux",
    HostConfig: {
      AutoRemove: rec.autoRemove,
      RestartPolicy: {
        Name: rec.restartPolicy?.name ?? "no",
        MaximumRetryCount: rec.restartPolicy?.maxRetries ?? 0,
      },
    },
    GraphDriver: {
      Data: {
        LowerDir: facts.lowers.join(":"),
        MergedDir: `${dir}/merged`,
        UpperDir: `${dir}/upper`,
        WorkDir: `${dir}/work`,
      },
      Name: "overlay",
    },
  };
  if (facts.size !== undefined) {
    out.SizeRw = facts.size.rw;
    out.SizeRootFs = facts.size.rootFs;
  }
  out.Mounts = [];
  out.Config = {
    Hostname: facts.hostname ?? shortId(rec.id),
    Domainname: "",
    User: facts.user ?? "",
    Tty: rec.tty,
    Env: facts.env ?? null,
    // The record keeps the argv only: how the image's Entrypoint and Cmd
    // made it up is not known, so all of it is the Cmd.
    Cmd: rec.command,
    Image: rec.image,
    Volumes: null,
    WorkingDir: facts.workingDir ?? "",
    Entrypoint: null,
    OnBuild: null,
    Labels: rec.labels ?? {},
    StopSignal: rec.stopSignal,
    StopTimeout: rec.stopTimeout,
  };
  out.NetworkSettings = {};
  return out;
}

/** The JSON in `path`, or undefined when it is missing or unreadable. */
function readJson(path: string): unknown {
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch {
    return undefined;
  }
}

/**
 * Reads what the container directory of `rec` tells: the bundle's
 * `userdata/config.json` (environment, cwd, hostname, user) and
 * `userdata/rootfs.json` (the lower layers), falling back to the image's
 * layers; with `size`, the writable layer's size (walked, unreadable
 * directories skipped).
 */
export function containerFacts(
  store: Store,
  rec: ContainerRecord,
  opts: { size?: boolean } = {},
): ContainerFacts {
  const dir = store.containerDir(rec.id);
  const facts: ContainerFacts = { dir, lowers: [], etcFiles: [] };
  const layout = readJson(`${dir}/userdata/rootfs.json`) as { lowers?: unknown } | undefined;
  if (Array.isArray(layout?.lowers) && layout.lowers.every((l) => typeof l === "string")) {
    facts.lowers = layout.lowers as string[];
  } else if (rec.imageId !== "") {
    try {
      facts.lowers = store.layerPaths(rec.imageId).reverse();
    } catch {
      // The image is gone or damaged: the lower layers stay unknown.
    }
  }
  const spec = readJson(`${dir}/userdata/config.json`) as {
    hostname?: unknown;
    process?: { env?: unknown; cwd?: unknown; user?: { uid?: unknown; gid?: unknown } };
  } | undefined;
  if (spec !== undefined) {
    const p = spec.process;
    if (Array.isArray(p?.env)) facts.env = p.env.filter((e): e is string => typeof e === "string");
    if (typeof p?.cwd === "string") facts.workingDir = p.cwd;
    if (typeof spec.hostname === "string") facts.hostname = spec.hostname;
    const uid = p?.user?.uid;
    const gid = p?.user?.gid;
    if (typeof uid === "number" && (uid !== 0 || (typeof gid === "number" && gid !== 0))) {
      facts.user = typeof gid === "number" ? `${uid}:${gid}` : String(uid);
    }
  }
  for (const name of ["hostname", "hosts", "resolv.conf"]) {
    try {
      Deno.statSync(`${dir}/userdata/etc/${name}`);
      facts.etcFiles.push(name);
    } catch {
      // Not written for this container (or not yet).
    }
  }
  if (opts.size) {
    const rw = treeSize(`${dir}/upper`);
    const image = rec.imageId === ""
      ? undefined
      : store.listImages().find((i) => i.id === rec.imageId);
    facts.size = { rw, rootFs: rw + (image?.size ?? 0) };
  }
  return facts;
}
