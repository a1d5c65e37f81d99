/**
 * Containers that outlive the command (`trun run -d`): the record in the
 * store, the container directory (a writable layer on disk, so a
 * container survives its trun process and writes use no RAM), its bundle,
 * and the monitor beside it.
 *
 * Layout of `<store>/containers/<id>/`: `upper/` and `work/` (the overlay's
 * writable layer), `merged/` (the root's mount point, in the container's
 * mount namespace only), `userdata/config.json` (the spec),
 * `userdata/rootfs.json` (the lower layers), `userdata/etc/` (hosts,
 * hostname, resolv.conf), `userdata/ctr.log` (output, CRI log format),
 * `userdata/monitor.log` (the monitor's own messages).
 */
import { closeFd, writeFd } from "../../ffi/child_program.ts";
import { type SealQuestion, sealQuestionOfSpec } from "../runtime/exe_seal.ts";
import { NO_CGROUP_ANNOTATION, ROOTFS_ANNOTATION } from "../engine/runtime.ts";
import type { StartTimings } from "../engine/executor.ts";
import type { IdMapping } from "../runtime/idmap.ts";
import {
  type GeneratedContainer,
  generateSpec,
  type ImageProcessConfig,
  type RunOptions,
} from "../spec/generate.ts";
import type { ContainerRecord, MountFlags, Store } from "../store/mod.ts";
import type { ContainerNetwork } from "../store/containers.ts";
import type { PreparedVolumes } from "./volumes.ts";
import { gatherHostFacts, gatherRootfsFacts, kernelAtLeast, newContainerId } from "./facts.ts";
import { generateName, validateName } from "./names.ts";
import { joinedMode, lookUpNetworkPeer, networkPeerBlocks } from "./network_peer.ts";
import { formatNetworkMode } from "../spec/network_mode.ts";
import { sweepLeftovers } from "./ops.ts";
import { helperKind, NETWORK_ANNOTATION } from "./network_helper.ts";
import { containerPaths } from "./container_paths.ts";
import { type PendingMonitor, readLine, spawnMonitor } from "./monitor_spawn.ts";
export { type PendingMonitor, readLine, spawnMonitor } from "./monitor_spawn.ts";
export { type ContainerPaths, containerPaths } from "./container_paths.ts";
import { containerLeases, leaseAddress, listNetworks, releaseLeases } from "../store/networks.ts";
import { holderNetnsPath, holderUsernsPath } from "../network/holder.ts";
import { recordNetworks, refreshHosts } from "../network/endpoints.ts";

/** What the monitor needs besides the spec: how the root is layered. */
export interface RootfsLayout {
  /** Lower layers, top first. */
  lowers: string[];
  /** Pass each lower as its own `lowerdir+` (Linux ≥ 6.8). */
  lowerdirAppend: boolean;
}

/** What `createDetached` needs. */
export interface DetachedInput {
  /** The open store. */
  store: Store;
  /** The id (default: a fresh one); the monitor may be started with it already. */
  id?: string;
  /** Root filesystem layers, top first. */
  layers: string[];
  /** The image id ("" for `--rootfs`). */
  imageId: string;
  /** The image as named, or the rootfs directory. */
  image: string;
  /** The image's process config. */
  imageConfig: ImageProcessConfig;
  /** The user's options. */
  options: RunOptions;
  /** Its network as the record keeps it (mode resolved, ports chosen). */
  network?: ContainerNetwork;
  /** `--name`. */
  name?: string;
  /** `--rm`. */
  autoRemove: boolean;
  /** `-l`. */
  labels: Record<string, string>;
  /** `--stop-signal` (else the image's, else SIGTERM). */
  stopSignal?: string;
  /** `--stop-timeout` (else 10 s). */
  stopTimeout?: number;
  /** The id mapping. */
  idMapping: IdMapping;
  /** `--restart`. */
  restartPolicy?: ContainerRecord["restartPolicy"];
  /** `-i`: keep the container's stdin open for attach clients. */
  stdin?: boolean;
  /** With `stdin`: the first client's EOF closes it (`run -i` in the foreground). */
  stdinOnce?: boolean;
  /** Called with the generated spec (`--debug`). */
  onSpec?: (spec: GeneratedContainer["spec"]) => void;
  /** Its volumes, made ready by `prepareVolumes` (lib/container/volumes.ts). */
  volumes?: PreparedVolumes;
  /**
   * Where its cgroup goes (lib/host/cgroup.ts `decideCgroup`): the parent as
   * a hierarchy path and as a directory; absent: no cgroup of its own.
   */
  cgroup?: { parent: string; parentDir: string };
}

/**
 * Records a new container and writes its directory and bundle; returns its
 * record (state "created"). The hostname is the short id, as Docker's.
 */
export function createDetached(input: DetachedInput): ContainerRecord {
  const { store } = input;
  const id = input.id ?? newContainerId();
  const records = store.listRecords();
  const taken = new Set(records.map((r) => r.name));
  const name = input.name === undefined ? generateName(taken) : validateName(input.name);
  if (taken.has(name)) {
    throw Object.assign(
      new Error(
        `the container name "${name}" is already in use; remove that container or choose another name`,
      ),
      { exitCode: 125 },
    );
  }
  const dir = store.containerDir(id);
  const p = containerPaths(dir);
  const network = input.options.network;
  const networkPeer = network.kind === "container"
    ? lookUpNetworkPeer(store, network.container, input.idMapping)
    : undefined;
  const onNetworks = checkNetworks(store, id, input.options, input.idMapping);
  const generated = generateSpec({
    id,
    rootPath: p.merged,
    filesDir: p.etc,
    image: input.imageConfig,
    rootfs: gatherRootfsFacts(input.layers, input.idMapping),
    options: onNetworks,
    host: {
      ...gatherHostFacts(input.idMapping),
      ...(input.cgroup ? { cgroupParent: input.cgroup.parent } : {}),
    },
    ...(input.volumes ? { volumes: input.volumes.sources } : {}),
    name,
    ...(networkPeer ? { networkPeer } : {}),
  });
  for (const d of [p.upper, p.work, p.merged, p.userdata]) {
    Deno.mkdirSync(d, { recursive: true, mode: 0o700 });
  }
  // The writable layer is the container's root directory: world-searchable
  // like any root, and owned by its root (the caller, rootless).
  Deno.chmodSync(p.upper, 0o755);
  if (generated.files.length > 0) Deno.mkdirSync(p.etc, { recursive: true, mode: 0o700 });
  for (const f of generated.files) Deno.writeTextFileSync(f.path, f.content, { mode: 0o644 });
  const layout: RootfsLayout = {
    lowers: input.layers,
    lowerdirAppend: kernelAtLeast(6, 8, Deno.osRelease()),
  };
  // For `trun-runc create` under conmon: how to make the root (see
  // ROOTFS_ANNOTATION in lib/engine/runtime.ts).
  generated.spec.annotations = {
    ...generated.spec.annotations,
    ...(input.cgroup ? {} : { [NO_CGROUP_ANNOTATION]: "true" }),
    [ROOTFS_ANNOTATION]: JSON.stringify({
      lowers: layout.lowers,
      upper: p.upper,
      work: p.work,
      lowerdirAppend: layout.lowerdirAppend,
    }),
  };
  if (helperKind(input.network)) {
    // For `trun-runc create` under conmon: the helper to start (see
    // NETWORK_ANNOTATION in network_helper.ts).
    generated.spec.annotations[NETWORK_ANNOTATION] = JSON.stringify({
      id,
      network: input.network,
    });
  }
  input.onSpec?.(generated.spec);
  Deno.writeTextFileSync(p.spec, JSON.stringify(generated.spec));
  Deno.writeTextFileSync(p.rootfs, JSON.stringify(layout));
  const rec: ContainerRecord = {
    kind: "container",
    id,
    name,
    imageId: input.imageId,
    image: input.image,
    created: new Date().toISOString(),
    command: generated.spec.process?.args ?? [],
    labels: input.labels,
    tty: input.options.tty,
    ...(input.stdin ? { stdin: true, stdinOnce: input.stdinOnce === true } : {}),
    autoRemove: input.autoRemove,
    stopSignal: input.stopSignal ?? input.imageConfig.stopSignal ?? "SIGTERM",
    stopTimeout: input.stopTimeout ?? 10,
    pid: 0,
    startTime: "",
    monitorPid: 0,
    monitorStartTime: "",
    state: "created",
    ...(input.restartPolicy ? { restartPolicy: input.restartPolicy, restartCount: 0 } : {}),
    ...(input.volumes?.volumes.length ? { volumes: input.volumes.volumes } : {}),
    ...mountFlagsOf(input.options),
    network: {
      ...input.network,
      mode: networkPeer
        ? joinedMode(networkPeer.id)
        : input.network?.mode ?? formatNetworkMode(network),
      ...namesOf(input.options),
    },
    ...(input.cgroup ? { cgroup: `${input.cgroup.parentDir}/${id}` } : {}),
  };
  sweepLeftovers(store, records, Date.now(), input.cgroup?.parentDir);
  try {
    store.addRecord(rec);
  } catch (e) {
    Deno.removeSync(dir, { recursive: true });
    throw Object.assign(e as Error, { exitCode: 125 });
  }
  if (!input.options.networks?.length) return rec;
  try {
    return joinNetworks(store, rec, input.options.networks);
  } catch (e) {
    releaseLeases(store, id);
    store.removeContainer(id);
    Deno.removeSync(dir, { recursive: true });
    throw Object.assign(e as Error, { exitCode: 125 });
  }
}

/**
 * Checks that the user-defined networks exist; returns the options with
 * the namespaces the holder keeps for the container to join: its network
 * namespace, and rootless the holder's user namespace.
 */
function checkNetworks(
  store: Store,
  id: string,
  o: RunOptions,
  mapping: IdMapping,
): RunOptions {
  if (!o.networks?.length) return o;
  const known = new Set(listNetworks(store).map((n) => n.name));
  for (const n of o.networks) {
    if (!known.has(n.name)) {
      throw Object.assign(new Error(`network ${n.name} not found`), { exitCode: 125 });
    }
  }
  return {
    ...o,
    networkNamespace: holderNetnsPath(id),
    ...(mapping.mode === "host" ? {} : { networkUserns: holderUsernsPath() }),
  };
}

/** Leases the container's addresses and writes the hosts files of everyone on its networks. */
function joinNetworks(
  store: Store,
  rec: ContainerRecord,
  networks: { name: string; aliases: string[] }[],
): ContainerRecord {
  for (const n of networks) leaseAddress(store, n.name, rec.id, n.aliases);
  const next = store.updateRecord(rec.id, (r) => ({
    ...r,
    network: {
      ...r.network,
      mode: networks.map((n) => n.name).join(","),
      networks: recordNetworks(containerLeases(store, rec.id), listNetworks(store)),
    },
  })) ?? rec;
  refreshHosts(store, networks.map((n) => n.name));
  return next;
}

/** The record's `network.names`, when the container was given any. */
function namesOf(o: RunOptions): Pick<NonNullable<ContainerRecord["network"]>, "names"> {
  const names = {
    ...(o.dns?.length ? { dns: o.dns } : {}),
    ...(o.dnsSearch?.length ? { dnsSearch: o.dnsSearch } : {}),
    ...(o.dnsOptions?.length ? { dnsOptions: o.dnsOptions } : {}),
    ...(o.addHosts?.length ? { extraHosts: o.addHosts } : {}),
  };
  return Object.keys(names).length > 0 ? { names } : {};
}

/** The record's `mountFlags`, when the container has any. */
function mountFlagsOf(o: RunOptions): { mountFlags?: MountFlags } {
  const flags = { volume: o.volumes, mount: o.mounts ?? [], tmpfs: o.tmpfs ?? [] };
  return flags.volume.length + flags.mount.length + flags.tmpfs.length > 0
    ? { mountFlags: flags }
    : {};
}

/** What the monitor reports once the container runs, or why it could not start. */
export type MonitorReport =
  | { ok: true; pid: number; timings?: StartTimings }
  | { ok: false; error: string; exitCode: number };

/**
 * Runs between the monitor's setup and the container's start: `run` in the
 * foreground and `start -a` connect to the attach socket here, so no
 * output is lost.
 */
export type BeforeStart = () => void | Promise<void>;

/** The seal question (lib/runtime/exe_seal.ts) of the spec saved in container directory `dir`. */
export function specSealQuestion(dir: string): SealQuestion {
  return sealQuestionOfSpec(JSON.parse(Deno.readTextFileSync(containerPaths(dir).spec)));
}

/** Lets a pending monitor go without a container (its record could not be made). */
export function abandonMonitor(m: PendingMonitor): void {
  closeFd(m.sock);
}

/**
 * Drives trun's monitor of container `rec` (started by `spawnMonitor`, or
 * here): tells it the record exists, attaches (`beforeStart`) when asked,
 * and waits for its report: the container runs, or it could not start
 * (with Docker's exit code).
 */
export async function startMonitor(
  rec: ContainerRecord,
  dir: string,
  beforeStart?: BeforeStart,
  pending: PendingMonitor = spawnMonitor(
    rec.id,
    dir,
    beforeStart !== undefined,
    specSealQuestion(dir),
  ),
): Promise<MonitorReport> {
  const mine = pending.sock;
  const noReport = (): MonitorReport => ({
    ok: false,
    error: `the monitor of container ${
      rec.id.slice(0, 12)
    } exited without a report; see "${pending.log}"`,
    exitCode: 125,
  });
  try {
    writeFd(mine, new TextEncoder().encode("record\n"));
    let line = await readLine(mine);
    if (beforeStart && line !== "") {
      const first = JSON.parse(line) as MonitorReport | { listening: true };
      if (!("listening" in first)) return first;
      await beforeStart();
      writeFd(mine, new TextEncoder().encode("go\n"));
      line = await readLine(mine);
    }
    return line === "" ? noReport() : JSON.parse(line) as MonitorReport;
  } finally {
    closeFd(mine);
  }
}

/**
 * Starts a created or exited container beside a monitor: conmon when it is
 * installed (or TRUN_MONITOR=conmon), else trun's own (TRUN_MONITOR=trun).
 */
export async function startDetached(
  rec: ContainerRecord,
  dir: string,
  beforeStart?: BeforeStart,
  pending?: PendingMonitor,
  early?: import("./conmon.ts").SpawnedConmon,
): Promise<MonitorReport> {
  if (pending) return await startMonitor(rec, dir, beforeStart, pending);
  const blocked = networkPeerBlocks(rec, dir);
  const { abandonEarlyConmon, chosenConmon, finishEarlyConmon, startWithConmon } = await import(
    "./conmon.ts"
  );
  if (blocked !== undefined) {
    if (early) await abandonEarlyConmon(early);
    return { ok: false, error: blocked, exitCode: 125 };
  }
  // conmon started by `run` ahead of the record, its runtime at the gate.
  if (early) return await finishEarlyConmon(early, rec, dir, beforeStart);
  const conmon = chosenConmon();
  return conmon
    ? await startWithConmon(conmon, rec, dir, beforeStart)
    : await startMonitor(rec, dir, beforeStart);
}
