/**
 * What Docker's container commands do to a container that outlives its
 * command: stop (its stop signal, then SIGKILL after the timeout), kill,
 * wait, remove. The truth about a container is its process (pid plus
 * start time), never only the stored state.
 */
import { containerLeases, releaseLeases } from "../store/networks.ts";
import { signalProcess } from "../../ffi/child_program.ts";
import { SIGNALS } from "../../ffi/syscalls.ts";
import { parseSignal } from "../engine/runtime.ts";
import { isAlive, processesInPidNamespace } from "../engine/state.ts";
import { killCgroup } from "../engine/cgroup.ts";
import type { ContainerRecord, Store } from "../store/mod.ts";
import { thawIfPaused } from "./pause.ts";
import { containerStatus, exitFilePath, monitorAlive } from "./status.ts";
import { removeUnusedVolumes } from "./volumes.ts";
import { stopNetworkHelper, strayHelpers } from "./network_helper.ts";
import { runtimeRoot } from "../paths.ts";

/** A container that does not exist, with Docker's wording and exit status. */
export function noSuchContainer(ref: string): Error {
  return Object.assign(new Error(`No such container: ${ref}`), { exitCode: 1 });
}

/** The record `ref` names, or Docker's "No such container". */
export function mustFind(store: Store, ref: string): ContainerRecord {
  const rec = store.findRecord(ref);
  if (!rec) throw noSuchContainer(ref);
  return rec;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the container's process is gone, up to `ms`; true when it is. */
export async function waitGone(rec: ContainerRecord, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (isAlive(rec)) {
    if (Date.now() >= end) return false;
    await sleep(20);
  }
  return true;
}

/**
 * Sends `signal` (a name or number) to the container's first process; a
 * paused container is thawed after SIGKILL or its stop signal, so that it
 * acts on it (Docker's rule; other signals wait for `unpause`).
 */
export async function killContainer(rec: ContainerRecord, signal: string): Promise<void> {
  if (containerStatus(rec) !== "running") {
    throw Object.assign(
      new Error(`cannot kill container ${rec.id.slice(0, 12)}: it is not running`),
      { exitCode: 1 },
    );
  }
  const n = parseSignal(signal);
  signalProcess(rec.pid, n);
  if (n === SIGNALS.SIGKILL || n === parseSignal(rec.stopSignal)) await thawIfPaused(rec);
}

/**
 * Docker's stop: the stop signal, then SIGKILL once `timeout` seconds have
 * passed (-1: wait for ever); then waits for the process to be gone.
 */
export async function stopContainer(rec: ContainerRecord, timeout: number): Promise<void> {
  if (containerStatus(rec) !== "running") return;
  signalProcess(rec.pid, parseSignal(rec.stopSignal));
  await thawIfPaused(rec);
  if (await waitGone(rec, timeout < 0 ? 2 ** 31 : timeout * 1000)) return;
  killAll(rec);
  await waitGone(rec, 10_000);
}

/**
 * SIGKILL to every process of a container: its whole cgroup at once
 * (`cgroup.kill`) when it has one, else its first process and whatever
 * its PID namespace holds (PID 1 going takes the rest with it).
 */
export function killAll(rec: ContainerRecord): void {
  if (rec.cgroup && killCgroup(rec.cgroup)) return;
  for (const pid of [rec.pid, ...processesInPidNamespace(rec.pid)]) {
    signalProcess(pid, SIGNALS.SIGKILL);
  }
}

/**
 * Removes a container: refused while it runs unless `force` (SIGKILL
 * first); then its directory and its record, and with `volumes` its
 * anonymous volumes. Run where its files can be
 * deleted (rootless: the storage user namespace, as main.ts arranges).
 */
export async function removeContainer(
  store: Store,
  rec: ContainerRecord,
  force: boolean,
  opts: { volumes?: boolean } = {},
): Promise<void> {
  if (containerStatus(rec) === "running") {
    if (!force) {
      throw Object.assign(
        new Error(
          `cannot remove container ${
            rec.id.slice(0, 12)
          }: it is running: stop it first, or use --force`,
        ),
        { exitCode: 1 },
      );
    }
    killAll(rec);
    await thawIfPaused(rec);
    await waitGone(rec, 10_000);
  } else {
    // Created under conmon but never started (or its start failed): the
    // record has no pid, but the runtime's state knows the waiting process.
    // (Nothing there for trun's own monitor: the call finds no state.)
    // conmonPaths from the spawn's small module: conmon.ts (98 modules)
    // is not needed on the way out of every `run --rm`.
    const { conmonPaths } = await import("./conmon_spawn.ts");
    const { remove } = await import("../engine/runtime.ts");
    await remove(conmonPaths(store.containerDir(rec.id)).runtimeRoot, rec.id, true)
      .catch(() => {});
  }
  stopNetworkHelper(rec.id, rec.network?.helper);
  store.updateRecord(rec.id, (r) => ({ ...r, state: "removing" }));
  if (rec.cgroup) removeCgroupDir(rec.cgroup);
  await Deno.remove(store.containerDir(rec.id), { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  store.removeContainer(rec.id);
  await leaveNetworks(store, rec.id);
  // `rm -v` and `--rm`: its anonymous volumes go too, unless another container uses them.
  const anonymous = (rec.volumes ?? []).filter((v) => v.anonymous).map((v) => v.name);
  if (opts.volumes) removeUnusedVolumes(store, anonymous);
  // With --rm, whoever waits for the exit still has to read its exit file
  // (sweepLeftovers removes it later); otherwise it goes now.
  if (!rec.autoRemove) {
    const exit = exitFilePath(store.containerDir(rec.id), rec.id);
    for (const f of [exit, `${exit}.runtime.log`]) await Deno.remove(f).catch(() => {});
  }
}

/** Gives back a removed container's addresses; the others on its networks forget its name. */
async function leaveNetworks(store: Store, id: string): Promise<void> {
  const nets = [...new Set(containerLeases(store, id).map((l) => l.network))];
  if (nets.length === 0) return;
  const { refreshHosts, releaseEndpoints } = await import("../network/endpoints.ts");
  releaseLeases(store, id);
  refreshHosts(store, nets);
  // A holder that does not answer finds the container's directory gone.
  await releaseEndpoints(id).catch(() => {});
}

/**
 * How long what a container leaves beside the store's records may stay
 * without a record: an exit file for whoever waits for it, a directory for
 * a creation still under way.
 */
const LEFTOVER_GRACE_MS = 5 * 60_000;

/** The entries of `dir` older than the grace period whose container (`idOf`) has no record. */
function leftovers(
  dir: string,
  live: Set<string>,
  now: number,
  idOf: (name: string) => string,
): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
  return entries.filter((e) => {
    if (live.has(idOf(e.name))) return false;
    try {
      const mtime = Deno.lstatSync(`${dir}/${e.name}`).mtime?.getTime() ?? now;
      return now - mtime > LEFTOVER_GRACE_MS;
    } catch {
      return false;
    }
  }).map((e) => `${dir}/${e.name}`);
}

/**
 * Tidies what killed trun processes left: network helpers of containers
 * that no longer run (their monitor was killed), exit files and runtime
 * logs of containers that no longer exist, and container directories whose record
 * was never written (a `run` killed while creating it), once old enough
 * that nothing is still making them. A directory this process may not
 * delete (files of other ids) is left to `trun system prune`.
 */
export function sweepLeftovers(
  store: Store,
  records: readonly ContainerRecord[] = store.listRecords(),
  now = Date.now(),
  cgroupParent?: string,
): void {
  stopOrphanHelpers(store, records);
  const live = new Set(records.map((r) => r.id));
  sweepCgroups(records, live, now, cgroupParent);
  const found = [
    ...leftovers(`${store.root}/exits`, live, now, (n) => n.slice(0, 64)),
    ...leftovers(`${store.root}/containers`, live, now, (n) => n),
  ];
  for (const path of found) {
    try {
      Deno.chmodSync(`${path}/work/work`, 0o700);
    } catch {
      // Not a container directory, or never mounted.
    }
    try {
      Deno.removeSync(path, { recursive: true });
    } catch {
      // Gone already, or not ours to delete.
    }
  }
}

/** rmdir of a cgroup directory: only an empty one goes (cgroupfs refuses the rest). */
function removeCgroupDir(dir: string): void {
  try {
    Deno.removeSync(dir);
  } catch {
    // Gone, or processes still in it: a later sweep tries again.
  }
}

/**
 * Tidies the cgroups killed trun processes left (a monitor killed with
 * SIGKILL never removes its container's): those of this store's
 * containers that no longer run, and in `cgroupParent` (`<delegated>/trun`)
 * the old enough directories of containers with no record. Only empty
 * cgroups can be removed, so a running container of another store that
 * shares the parent keeps its own.
 */
function sweepCgroups(
  records: readonly ContainerRecord[],
  live: Set<string>,
  now: number,
  cgroupParent: string | undefined,
): void {
  for (const r of records) {
    if (r.cgroup && containerStatus(r) !== "running") removeCgroupDir(r.cgroup);
  }
  if (cgroupParent === undefined) return;
  for (const dir of leftovers(cgroupParent, live, now, (n) => n)) {
    if (/\/[0-9a-f]{64}$/.test(dir)) removeCgroupDir(dir);
  }
}

/**
 * Ends the network helpers of containers that no longer run (whose
 * monitor was killed), and those whose container has no record any more.
 */
export function stopOrphanHelpers(store: Store, records: readonly ContainerRecord[]): void {
  for (const r of records) {
    if (r.network?.helper && !isAlive(r)) stopNetworkHelper(r.id, r.network.helper);
  }
  const live = new Set(records.map((r) => r.id));
  for (const pid of strayHelpers(store.root, runtimeRoot(), live)) {
    signalProcess(pid, SIGNALS.SIGTERM);
  }
}

/**
 * Removes a container as `trun rm` does, from the caller's own process: a
 * running one (with `force`) is killed from here, where the caller owns
 * its user namespace (a storage helper's sibling namespace could not
 * signal a container user other than root); the writable layer is then
 * removed in this process when the caller may delete everything in it
 * (files of the container's root are the caller's own; overlayfs leaves
 * its `work/work` with mode 0), else through the storage user namespace
 * (directories of other subordinate ids). Under the container's lock, so
 * the monitor and `run` in the foreground may both remove an `--rm`
 * container (Podman's model): the first does, the second finds nothing.
 * Returns false when there was no such container.
 */
export async function removeHere(
  open: () => Store,
  ref: string,
  opts: { force: boolean; volumes: boolean },
): Promise<boolean> {
  const store = open();
  let id = "";
  try {
    const found = store.findRecord(ref);
    if (!found) return false;
    id = found.id;
    const helper = await store.withLock(`container-${id}`, async () => {
      const rec = store.findRecord(id);
      if (!rec) return false;
      try {
        Deno.chmodSync(`${store.containerDir(id)}/work/work`, 0o700);
      } catch {
        // Never mounted, or not ours.
      }
      try {
        await removeContainer(store, rec, opts.force, { volumes: opts.volumes });
        store.dropLockFile(`container-${id}`);
        return false;
      } catch (e) {
        const denied = e instanceof Deno.errors.PermissionDenied ||
          e instanceof Deno.errors.NotCapable;
        const { storageUsernsMapping } = await import("../runtime/userns_exec.ts");
        if (!denied || storageUsernsMapping() === null) throw e;
        // Put back the record's state: the helper removes it.
        store.updateRecord(id, (r) => ({ ...r, state: "exited" }));
        return true;
      }
    });
    if (!helper) return true;
  } finally {
    store.close();
  }
  const { runTrunForStorage } = await import("../runtime/userns_exec.ts");
  const code = await runTrunForStorage(
    ["rm", "--force", ...(opts.volumes ? ["--volumes"] : []), id],
    { quiet: true },
  );
  if (code !== 0) {
    throw new Error(`removing container ${id.slice(0, 12)} in the storage user namespace failed`);
  }
  return true;
}

/** `--rm` at a container's exit (the monitor's, or the foreground `run`'s): see removeHere. */
export async function removeAtExit(open: () => Store, id: string): Promise<void> {
  await removeHere(open, id, { force: true, volumes: true });
}

/**
 * Records the exit of run `pid` of container `id` with status `code` (from
 * its exit file), unless a newer run or the monitor got there first: the
 * monitor and `run` in the foreground both may, whichever is first.
 */
export function recordExit(store: Store, id: string, pid: number, code: number): void {
  store.updateRecord(
    id,
    (r) =>
      r.state === "running" && r.pid === pid && !isAlive(r)
        ? { ...r, state: "exited", exitCode: code, finishedAt: new Date().toISOString() }
        : r,
  );
}

/** Waits for a container to stop; returns its exit status as the store has it. */
export async function waitContainer(
  open: () => Store,
  ref: string,
): Promise<number> {
  for (;;) {
    const store = open();
    let rec: ContainerRecord;
    try {
      rec = mustFind(store, ref);
    } finally {
      store.close();
    }
    // The monitor records the exit status just after the process goes;
    // without a monitor (killed) nobody will: the status is unknown (-1).
    if (containerStatus(rec) !== "running" && (rec.state !== "running" || !monitorAlive(rec))) {
      return rec.exitCode ?? -1;
    }
    await sleep(50);
  }
}

/**
 * Waits (up to 10 s) until the monitor has recorded the container's exit,
 * so that a start does not race the previous run's bookkeeping.
 */
export async function waitRecorded(store: Store, id: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const rec = store.findRecord(id);
    if (!rec || (rec.state !== "running" && containerStatus(rec) !== "running")) return;
    if (containerStatus(rec) !== "running" && !monitorAlive(rec)) return;
    await sleep(20);
  }
}
