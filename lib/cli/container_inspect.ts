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
import { type ContainerStatus, containerStatus, logPath } from "../container/status.ts";
import { isPaused } from "../container/pause.ts";
import type { ContainerRecord, Store } from "../store/mod.ts";
import { type MountRequest, mountRequests } from "../spec/mounts.ts";
import { hostConfigResources } from "../spec/resources.ts";
import type { Resources } from "../spec/types.ts";
import { dockerPortMaps } from "../spec/ports.ts";
import { helperProblem } from "../container/network_problem.ts";

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
  /** The bundle's domain name. */
  domainname?: string;
  /** `uid:gid` of the bundle's process, when not root. */
  user?: string;
  /** Which of `hostname`, `hosts`, `resolv.conf` trun wrote for it (in `userdata/etc`). */
  etcFiles: string[];
  /** With `--network container:`, the other container's files it shares, by name. */
  sharedEtcFiles?: Record<string, string>;
  /** With `--size`: bytes of the writable layer and of the image under it. */
  size?: { rw: number; rootFs: number };
  /** `<store>/volumes`: where a volume's `_data` is. */
  volumesDir?: string;
  /** The bundle's `linux.resources` (HostConfig's Memory, NanoCpus, PidsLimit…). */
  resources?: Resources;
  /** Whether it is paused now (its cgroup frozen). */
  paused?: boolean;
  /** Why its network is broken while it runs (its helper died), if it is. */
  networkProblem?: string;
}

/** What inspect shows of a container's mounts: Mounts, and HostConfig's and Config's parts. */
export interface InspectedMounts {
  /** Docker's `Mounts`: binds, volumes and `--mount type=tmpfs` (not `--tmpfs`). */
  mounts: Record<string, unknown>[];
  /** `HostConfig.Binds`: the `-v` values with a source, or null. */
  binds: string[] | null;
  /** `HostConfig.Mounts`: the `--mount` values in the API's shape (absent when none). */
  hostMounts?: Record<string, unknown>[];
  /** `HostConfig.Tmpfs`: `--tmpfs` paths and their options (absent when none). */
  tmpfs?: Record<string, string>;
  /** `Config.Volumes`: anonymous volume paths, or null. */
  volumes: Record<string, Record<string, never>> | null;
}

/** The API's `mount.Mount` of a `--mount` request (fields omitted when empty, as Go does). */
function apiMount(r: MountRequest, name: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { Type: r.type };
  const source = r.type === "bind" ? r.source : r.type === "volume" ? r.name : undefined;
  if (source) out.Source = source;
  out.Target = r.destination;
  if (r.readOnly) out.ReadOnly = true;
  if (r.type === "bind" && (r.propagation || !r.recursive)) {
    out.BindOptions = {
      ...(r.propagation ? { Propagation: r.propagation } : {}),
      ...(!r.recursive ? { NonRecursive: true } : {}),
    };
  }
  if (r.type === "volume") {
    const v: Record<string, unknown> = {};
    if (r.noCopy) v.NoCopy = true;
    if (Object.keys(r.labels).length > 0) v.Labels = r.labels;
    if (r.driver !== undefined || Object.keys(r.driverOptions).length > 0) {
      v.DriverConfig = {
        Name: r.driver ?? "local",
        ...(Object.keys(r.driverOptions).length > 0 ? { Options: r.driverOptions } : {}),
      };
    }
    if (Object.keys(v).length > 0) out.VolumeOptions = v;
    if (name !== undefined && source === undefined) out.Source = name;
  }
  if (r.type === "tmpfs" && (r.sizeBytes !== undefined || r.fileMode !== undefined)) {
    out.TmpfsOptions = {
      ...(r.sizeBytes !== undefined ? { SizeBytes: r.sizeBytes } : {}),
      ...(r.fileMode !== undefined ? { Mode: r.fileMode } : {}),
    };
  }
  return out;
}

/**
 * Docker's view of `rec`'s mounts from its mount flags (parsed again) and
 * the volumes it was given; `volumesDir` locates each volume's data.
 */
export function inspectMounts(rec: ContainerRecord, volumesDir: string): InspectedMounts {
  const flags = rec.mountFlags ?? { volume: [], mount: [], tmpfs: [] };
  let requests: MountRequest[];
  try {
    requests = mountRequests({ volumes: flags.volume, mounts: flags.mount, tmpfs: flags.tmpfs });
  } catch {
    // Recorded by a trun that parsed them differently: nothing to show.
    requests = [];
  }
  const nameAt = new Map((rec.volumes ?? []).map((v) => [v.destination, v.name]));
  const out: InspectedMounts = { mounts: [], binds: null, volumes: null };
  for (const r of requests) {
    const name = nameAt.get(r.destination);
    if (
      r.type === "bind" && r.flag === "volume" ||
      r.type === "volume" && r.name && r.flag === "volume"
    ) {
      (out.binds ??= []).push(r.spec);
    }
    if (r.type === "volume" && r.name === undefined && r.flag === "volume") {
      (out.volumes ??= {})[r.destination] = {};
    }
    if (r.flag === "mount") (out.hostMounts ??= []).push(apiMount(r, name));
    if (r.flag === "tmpfs") {
      const colon = r.spec.indexOf(":");
      (out.tmpfs ??= {})[r.destination] = colon < 0 ? "" : r.spec.slice(colon + 1);
      continue;
    }
    const common = { Destination: r.destination, Mode: r.mode, RW: !r.readOnly };
    if (r.type === "bind") {
      out.mounts.push({
        Type: "bind",
        Source: r.source,
        ...common,
        Propagation: r.propagation ?? "rprivate",
      });
    } else if (r.type === "volume") {
      out.mounts.push({
        Type: "volume",
        Name: name ?? "",
        Source: name === undefined ? "" : `${volumesDir}/${name}/_data`,
        ...common,
        Driver: "local",
        Propagation: "",
      });
    } else out.mounts.push({ Type: "tmpfs", Source: "", ...common, Propagation: "" });
  }
  return out;
}

/**
 * Docker's inspect object for `rec`, whose status now is `status` (from
 * `containerStatus`). Keys in Docker's order; what trun does not have
 * (networks) is empty or zero.
 */
export function inspectContainer(
  rec: ContainerRecord,
  status: ContainerStatus,
  facts: ContainerFacts,
): Record<string, unknown> {
  const { dir } = facts;
  const m = inspectMounts(rec, facts.volumesDir ?? "");
  const net = dockerPortMaps(rec.network?.ports ?? [], rec.network?.exposed ?? []);
  const etc = (name: string) =>
    facts.etcFiles.includes(name)
      ? `${dir}/userdata/etc/${name}`
      : facts.sharedEtcFiles?.[name] ?? "";
  const out: Record<string, unknown> = {
    Id: rec.id,
    Created: rec.created,
    Path: rec.command[0] ?? "",
    Args: rec.command.slice(1),
    State: {
      Status: facts.paused ? "paused" : status,
      Running: status === "running",
      Paused: facts.paused === true,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: status === "running" ? rec.pid : 0,
      ExitCode: rec.exitCode ?? 0,
      Error: rec.error ?? (status === "running" ? facts.networkProblem ?? "" : ""),
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
      Binds: m.binds,
      // Records from before trun had networks ran in the host's.
      NetworkMode: rec.network?.mode ?? "host",
      Dns: rec.network?.names?.dns ?? [],
      DnsOptions: rec.network?.names?.dnsOptions ?? [],
      DnsSearch: rec.network?.names?.dnsSearch ?? [],
      ExtraHosts: rec.network?.names?.extraHosts ?? null,
      AutoRemove: rec.autoRemove,
      RestartPolicy: {
        Name: rec.restartPolicy?.name ?? "no",
        MaximumRetryCount: rec.restartPolicy?.maxRetries ?? 0,
      },
      ...(m.tmpfs ? { Tmpfs: m.tmpfs } : {}),
      ...(m.hostMounts ? { Mounts: m.hostMounts } : {}),
      ...hostConfigResources(facts.resources),
      PortBindings: net.portBindings,
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
  out.Mounts = m.mounts;
  out.Config = {
    Hostname: facts.hostname ?? shortId(rec.id),
    Domainname: facts.domainname ?? "",
    User: facts.user ?? "",
    Tty: rec.tty,
    Env: facts.env ?? null,
    // The record keeps the argv only: how the image's Entrypoint and Cmd
    // made it up is not known, so all of it is the Cmd.
    Cmd: rec.command,
    Image: rec.image,
    ...(rec.network?.exposed?.length
      ? { ExposedPorts: Object.fromEntries(Object.keys(net.ports).map((k) => [k, {}])) }
      : {}),
    Volumes: m.volumes,
    WorkingDir: facts.workingDir ?? "",
    Entrypoint: null,
    OnBuild: null,
    Labels: rec.labels ?? {},
    StopSignal: rec.stopSignal,
    StopTimeout: rec.stopTimeout,
  };
  out.NetworkSettings = {
    ...networkSettings(rec),
    Ports: status === "running" ? net.ports : {},
  };
  return out;
}

/** Docker's NetworkSettings: the endpoints on user-defined networks, with the first one's at the top. */
export function networkSettings(rec: ContainerRecord): Record<string, unknown> {
  const nets = rec.network?.networks ?? {};
  const running = rec.state === "running";
  const networks = Object.fromEntries(
    Object.entries(nets).map(([name, e]) => [name, {
      IPAMConfig: null,
      Links: null,
      Aliases: e.aliases,
      MacAddress: e.mac ?? "",
      NetworkID: e.networkId ?? "",
      EndpointID: "",
      Gateway: e.gateway ?? "",
      IPAddress: e.ip,
      IPPrefixLen: e.prefixLen ?? 0,
      IPv6Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      DNSNames: [rec.name, ...e.aliases, rec.id.slice(0, 12)],
    }]),
  );
  if (Object.keys(networks).length === 0) return {};
  // Docker fills the top-level fields only while the container runs.
  const first = Object.values(nets)[0]!;
  return {
    Bridge: "",
    SandboxID: "",
    SandboxKey: "",
    Ports: {},
    Gateway: running ? first.gateway ?? "" : "",
    IPAddress: running ? first.ip : "",
    IPPrefixLen: running ? first.prefixLen ?? 0 : 0,
    MacAddress: running ? first.mac ?? "" : "",
    Networks: networks,
  };
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
  const facts: ContainerFacts = {
    dir,
    lowers: [],
    etcFiles: [],
    volumesDir: `${store.root}/volumes`,
  };
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
    linux?: { resources?: Resources };
    hostname?: unknown;
    domainname?: unknown;
    mounts?: unknown;
    process?: { env?: unknown; cwd?: unknown; user?: { uid?: unknown; gid?: unknown } };
  } | undefined;
  if (spec !== undefined) {
    const p = spec.process;
    if (Array.isArray(p?.env)) facts.env = p.env.filter((e): e is string => typeof e === "string");
    if (typeof p?.cwd === "string") facts.workingDir = p.cwd;
    if (typeof spec.hostname === "string") facts.hostname = spec.hostname;
    if (typeof spec.domainname === "string") facts.domainname = spec.domainname;
    if (rec.network?.mode.startsWith("container:") && Array.isArray(spec.mounts)) {
      // Bound from the joined container's directory (lib/container/network_peer.ts).
      for (const m of spec.mounts as { destination?: unknown; source?: unknown }[]) {
        const name = typeof m.destination === "string" && m.destination.match(/^\/etc\/(.+)$/)?.[1];
        if (
          name && ["hostname", "hosts", "resolv.conf"].includes(name) &&
          typeof m.source === "string"
        ) {
          (facts.sharedEtcFiles ??= {})[name] = m.source;
        }
      }
    }
    if (spec.linux?.resources) facts.resources = spec.linux.resources;
    const uid = p?.user?.uid;
    const gid = p?.user?.gid;
    if (typeof uid === "number" && (uid !== 0 || (typeof gid === "number" && gid !== 0))) {
      facts.user = typeof gid === "number" ? `${uid}:${gid}` : String(uid);
    }
  }
  if (containerStatus(rec) === "running" && isPaused(rec)) facts.paused = true;
  for (const name of ["hostname", "hosts", "resolv.conf"]) {
    try {
      Deno.statSync(`${dir}/userdata/etc/${name}`);
      facts.etcFiles.push(name);
    } catch {
      // Not written for this container (or not yet).
    }
  }
  const problem = helperProblem(rec);
  if (problem) facts.networkProblem = problem;
  if (opts.size) {
    const rw = treeSize(`${dir}/upper`);
    const image = rec.imageId === ""
      ? undefined
      : store.listImages().find((i) => i.id === rec.imageId);
    facts.size = { rw, rootFs: rw + (image?.size ?? 0) };
  }
  return facts;
}
