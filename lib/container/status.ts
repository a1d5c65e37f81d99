/**
 * What a container record's state is right now. The store keeps the last
 * state the monitor wrote; the truth is checked against the process (pid
 * plus start time, so a reused pid is never taken for the container), so
 * `ps` never lies: a container that died while nobody watched, or whose
 * monitor was killed, shows as exited with what is known.
 */
import { isAlive, processStat } from "../engine/state.ts";
import type { ContainerRecord } from "../store/containers.ts";

/** Docker's container states. */
export type ContainerStatus = "created" | "running" | "exited" | "removing";

/** The status of `rec` now. */
export function containerStatus(rec: ContainerRecord, proc = "/proc"): ContainerStatus {
  if (rec.state === "removing") return "removing";
  if (rec.pid > 0 && isAlive(rec, proc)) return "running";
  if (rec.state === "created" && rec.pid === 0) return "created";
  return "exited";
}

/** Whether the monitor beside `rec` is alive. */
export function monitorAlive(rec: ContainerRecord, proc = "/proc"): boolean {
  return rec.monitorPid > 0 &&
    isAlive({ pid: rec.monitorPid, startTime: rec.monitorStartTime }, proc);
}

/** The log file of a container whose directory is `dir` (Kubernetes' CRI text format, as conmon writes it). */
export function logPath(dir: string): string {
  return `${dir}/userdata/ctr.log`;
}

/**
 * The exit file of container `id` whose directory is `dir`: its exit status
 * as text, written by the monitor (conmon's `--exit-dir` layout) before it
 * lets attach clients go. It sits beside the containers' directories, so
 * it outlives a container removed at exit (`--rm`).
 */
export function exitFilePath(dir: string, id: string): string {
  return `${exitsDir(dir)}/${id}`;
}

/** The directory of exit files, for a container whose directory is `dir`. */
export function exitsDir(dir: string): string {
  return `${dir.replace(/\/containers\/[^/]+$/, "")}/exits`;
}

/** Reads an exit file; undefined when there is none (yet). */
export function readExitFile(path: string): number | undefined {
  try {
    const n = Number(Deno.readTextFileSync(path).trim());
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `r` once its process `pid` runs under `monitor` (itself process
 * `monitorPid`, 0 when unknown): both start times are kept so a reused pid
 * is never taken for either, and the previous run's exit is cleared.
 */
export function runningRecord(
  r: ContainerRecord,
  pid: number,
  monitor: "trun" | "conmon",
  monitorPid: number,
): ContainerRecord {
  const { exitCode: _code, finishedAt: _end, error: _error, stoppedByUser: _stopped, ...rest } = r;
  return {
    ...rest,
    pid,
    startTime: processStat(pid)?.startTime ?? "",
    monitor,
    monitorPid,
    monitorStartTime: monitorPid > 0 ? processStat(monitorPid)?.startTime ?? "" : "",
    state: "running",
    startedAt: new Date().toISOString(),
  };
}
