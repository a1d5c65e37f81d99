/**
 * What Docker's container commands do to a container that outlives its
 * command: stop (its stop signal, then SIGKILL after the timeout), kill,
 * wait, remove. The truth about a container is its process (pid plus
 * start time), never only the stored state.
 */
import { signalProcess } from "../../ffi/child_program.ts";
import { SIGNALS } from "../../ffi/syscalls.ts";
import { parseSignal } from "../engine/runtime.ts";
import { isAlive, processesInPidNamespace } from "../engine/state.ts";
import type { ContainerRecord, Store } from "../store/mod.ts";
import { containerStatus, exitFilePath, exitsDir, monitorAlive } from "./status.ts";

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

/** Sends `signal` (a name or number) to the container's first process. */
export function killContainer(rec: ContainerRecord, signal: string): void {
  if (containerStatus(rec) !== "running") {
    throw Object.assign(
      new Error(`cannot kill container ${rec.id.slice(0, 12)}: it is not running`),
      { exitCode: 1 },
    );
  }
  signalProcess(rec.pid, parseSignal(signal));
}

/**
 * Docker's stop: the stop signal, then SIGKILL once `timeout` seconds have
 * passed (-1: wait for ever); then waits for the process to be gone.
 */
export async function stopContainer(rec: ContainerRecord, timeout: number): Promise<void> {
  if (containerStatus(rec) !== "running") return;
  signalProcess(rec.pid, parseSignal(rec.stopSignal));
  if (await waitGone(rec, timeout < 0 ? 2 ** 31 : timeout * 1000)) return;
  // PID 1 of the namespace going takes every other process with it.
  for (const pid of [rec.pid, ...processesInPidNamespace(rec.pid)]) {
    signalProcess(pid, SIGNALS.SIGKILL);
  }
  await waitGone(rec, 10_000);
}

/**
 * Removes a container: refused while it runs unless `force` (SIGKILL
 * first); then its directory and its record. Run where its files can be
 * deleted (rootless: the storage user namespace, as main.ts arranges).
 */
export async function removeContainer(
  store: Store,
  rec: ContainerRecord,
  force: boolean,
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
    for (const pid of [rec.pid, ...processesInPidNamespace(rec.pid)]) {
      signalProcess(pid, SIGNALS.SIGKILL);
    }
    await waitGone(rec, 10_000);
  }
  store.updateRecord(rec.id, (r) => ({ ...r, state: "removing" }));
  await Deno.remove(store.containerDir(rec.id), { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  store.removeContainer(rec.id);
  // With --rm, whoever waits for the exit still has to read its exit file
  // (sweepExitFiles removes it later); otherwise it goes now.
  if (!rec.autoRemove) {
    const exit = exitFilePath(store.containerDir(rec.id), rec.id);
    for (const f of [exit, `${exit}.runtime.log`]) await Deno.remove(f).catch(() => {});
  }
}

/** How long the exit file of a removed container stays for whoever waits for it. */
const EXIT_FILE_GRACE_MS = 5 * 60_000;

/**
 * Removes exit files (and runtime logs) of containers that no longer
 * exist, once they are old enough that nobody waits for them any more.
 */
export function sweepExitFiles(store: Store, now = Date.now()): void {
  const dir = exitsDir(store.containerDir("x"));
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  const live = new Set(store.listRecords().map((r) => r.id));
  for (const e of entries) {
    const id = e.name.slice(0, 64);
    if (live.has(id)) continue;
    try {
      const mtime = Deno.lstatSync(`${dir}/${e.name}`).mtime?.getTime() ?? now;
      if (now - mtime > EXIT_FILE_GRACE_MS) Deno.removeSync(`${dir}/${e.name}`);
    } catch {
      // Gone already.
    }
  }
}

/**
 * `--rm` at a container's exit: the writable layer is removed in this
 * process when the caller may delete everything in it (files of the
 * container's root are the caller's own; overlayfs leaves its `work/work`
 * with mode 0); otherwise (directories of other subordinate ids) through
 * the storage user namespace, as `trun rm` does. The monitor and
 * `run` in the foreground may both get here (Podman's model): the first
 * removes it under the container's lock, the second finds nothing.
 */
export async function removeAtExit(open: () => Store, id: string): Promise<void> {
  const store = open();
  let helper = false;
  try {
    await store.withLock(`container-${id}`, async () => {
      const rec = store.findRecord(id);
      if (!rec) return;
      const dir = store.containerDir(rec.id);
      try {
        Deno.chmodSync(`${dir}/work/work`, 0o700);
      } catch {
        // Never mounted, or not ours.
      }
      try {
        await removeContainer(store, rec, true);
      } catch (e) {
        if (
          !(e instanceof Deno.errors.PermissionDenied) && !(e instanceof Deno.errors.NotCapable)
        ) throw e;
        // Put back the record's state: the helper removes it.
        store.updateRecord(rec.id, (r) => ({ ...r, state: "exited" }));
        helper = true;
      }
    });
  } finally {
    store.close();
  }
  if (!helper) return;
  const { runTrunForStorage } = await import("../runtime/userns_exec.ts");
  await runTrunForStorage(["rm", "--force", id], { stdoutToStderr: true });
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
