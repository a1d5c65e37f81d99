/**
 * Docker's `pause` and `unpause` of a container that outlives its command:
 * its own cgroup is frozen or thawed (lib/cgroup/freeze.ts). Whether it is
 * paused is always read from the kernel (`cgroup.events`), never stored.
 */
import { cgroupDirOf, containerCgroup, noCgroupMessage } from "../cgroup/container_cgroup.ts";
import { isFrozen, setFrozen } from "../cgroup/freeze.ts";
import type { ContainerRecord } from "../store/mod.ts";
import { containerStatus } from "./status.ts";

/** An error with Docker's exit status for a refused container operation (1). */
function refused(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 1 });
}

/**
 * Whether the container (running) is paused: the cgroup its first process
 * is in reports `frozen 1`. Cheap (two small reads), for `ps` and `inspect`.
 */
export function isPaused(rec: ContainerRecord): boolean {
  if (rec.pid <= 0) return false;
  const dir = rec.cgroup ?? cgroupDirOf(rec.pid);
  return dir !== null && dir !== undefined && isFrozen(dir);
}

/** The own cgroup of a running container, or Docker's and trun's reasons why not. */
function ownCgroupOrThrow(rec: ContainerRecord, what: string): string {
  if (containerStatus(rec) !== "running") throw refused(`Container ${rec.id} is not running`);
  const found = containerCgroup(rec.pid, rec.cgroup);
  if (found.dir === undefined) throw refused(noCgroupMessage(what, found.why));
  return found.dir;
}

/** `pause`: freezes every process of the container. */
export async function pauseContainer(rec: ContainerRecord): Promise<void> {
  const dir = ownCgroupOrThrow(rec, `cannot pause container ${rec.id.slice(0, 12)}`);
  if (isFrozen(dir)) throw refused(`Container ${rec.id} is already paused`);
  await setFrozen(dir, true);
}

/** `unpause`: thaws a paused container. */
export async function unpauseContainer(rec: ContainerRecord): Promise<void> {
  if (containerStatus(rec) !== "running" || !isPaused(rec)) {
    throw refused(`Container ${rec.id} is not paused`);
  }
  const dir = ownCgroupOrThrow(rec, `cannot unpause container ${rec.id.slice(0, 12)}`);
  await setFrozen(dir, false);
}

/**
 * Thaws a paused container after a signal that must take effect (its stop
 * signal, SIGKILL), as Docker does: a frozen process does not act on it.
 * Does nothing for a container that is not paused.
 */
export async function thawIfPaused(rec: ContainerRecord): Promise<void> {
  if (!isPaused(rec)) return;
  const found = containerCgroup(rec.pid, rec.cgroup);
  if (found.dir !== undefined) await setFrozen(found.dir, false);
}
