/**
 * A container's root file system as a descriptor, for `trun cp` and
 * `trun export`: paths inside it are resolved with openat2(2)
 * RESOLVE_IN_ROOT from that descriptor, so `..` and symlinks (even one to
 * `/etc/passwd`) stay inside the container.
 *
 * - Running: `/proc/PID/root` of its first process, i.e. its merged root
 *   in its own mount namespace (the only place trun mounts it), with the
 *   container's mounts below it. The pid's start time is checked after
 *   the open, so a reused pid never hands over another process's root.
 * - Created or exited: its overlay (the image layers below its writable
 *   layer, as the engine mounts it) mounted nowhere with fsmount(2); the
 *   mount lives as long as the descriptor. Mounting it ourselves keeps the
 *   kernel's own whiteout and copy-up rules, which reading the layers by
 *   hand would have to redo (and a copy into a stopped container needs
 *   copy-up). It needs CAP_SYS_ADMIN over the mount namespace: root has
 *   it; rootless, trun's user-namespace helper gets a mount namespace of
 *   its own.
 *
 * Rootless, the files belong to subordinate ids the user cannot read or
 * create, so the work runs in the user-namespace helper, mapped like the
 * containers. A helper is not allowed to open another user namespace's
 * `/proc/PID/root`, so the caller opens it and passes the descriptor down
 * (inherited through exec, named in {@link ROOT_FD_ENV}).
 */
import { closeFd } from "../../ffi/child_program.ts";
import { fsmountDetached, openAt2 } from "../../ffi/fs.ts";
import { AT, O } from "../../ffi/syscalls.ts";
import { overlayOptions } from "../engine/program.ts";
import { isAlive } from "../engine/state.ts";
import { insideUsernsHelper, runTrunInUserns } from "../runtime/userns_exec.ts";
import { loadIdMapping } from "../runtime/idmap.ts";
import type { ContainerRecord } from "../store/mod.ts";
import { containerPaths, type RootfsLayout } from "./detached.ts";
import { containerStatus } from "./status.ts";

/** Names, for the helper, the root descriptor its caller opened: `ID:FD`. */
export const ROOT_FD_ENV = "TRUN_CONTAINER_ROOT_FD";

/** A container's root, open. */
export interface ContainerRoot {
  /** A descriptor of the root directory (O_PATH). */
  fd: number;
  /** Whether it is the running container's (else a mount of the stopped one's layers). */
  running: boolean;
  /** Closes the descriptor (and so the mount of a stopped container). */
  close(): void;
}

/** Opens `/proc/PID/root` of the running container `rec`; null when it is not running (any more). */
function openRunningRoot(rec: ContainerRecord, cloexec: boolean): number | null {
  if (containerStatus(rec) !== "running") return null;
  let fd: number;
  try {
    fd = openAt2(
      AT.FDCWD,
      `/proc/${rec.pid}/root`,
      O.PATH | O.DIRECTORY | (cloexec ? O.CLOEXEC : 0),
      0,
      `opening the root of container ${rec.id.slice(0, 12)}`,
    );
  } catch (e) {
    // It exited meanwhile: use its layers.
    if (!isAlive(rec)) return null;
    throw e;
  }
  // The process could have exited and its pid gone to another between the
  // status check and the open: the start time tells.
  if (!isAlive(rec)) {
    closeFd(fd);
    return null;
  }
  return fd;
}

/** Mounts the layers of the container in `dir` where nothing sees them; returns the root's descriptor. */
function mountStoppedRoot(rec: ContainerRecord, dir: string): number {
  const p = containerPaths(dir);
  const layout = JSON.parse(Deno.readTextFileSync(p.rootfs)) as RootfsLayout;
  return fsmountDetached(
    "overlay",
    overlayOptions(layout.lowers, p.upper, p.work, layout.lowerdirAppend),
    `mounting the layers of container ${rec.id.slice(0, 12)}`,
  );
}

/** The root of container `rec` (directory `dir`), as this process can open it. */
export function openContainerRoot(rec: ContainerRecord, dir: string): ContainerRoot {
  const passed = Deno.env.get(ROOT_FD_ENV);
  if (passed !== undefined && passed.startsWith(`${rec.id}:`)) {
    const fd = Number(passed.slice(rec.id.length + 1));
    return { fd, running: true, close: () => closeFd(fd) };
  }
  const running = openRunningRoot(rec, true);
  if (running !== null) return { fd: running, running: true, close: () => closeFd(running) };
  const fd = mountStoppedRoot(rec, dir);
  return { fd, running: false, close: () => closeFd(fd) };
}

/**
 * Runs `work` with the root of container `rec` open, where its files can
 * be read and written as the container's ids: in this process as root or
 * inside the helper; otherwise `argv` (this whole command line) runs again
 * in the user-namespace helper, with the running container's root open
 * for it. Returns `work`'s exit status, or the helper's.
 */
export async function withContainerRoot(
  rec: ContainerRecord,
  dir: string,
  argv: string[],
  work: (root: ContainerRoot) => Promise<number>,
): Promise<number> {
  if (Deno.uid() !== 0 && !insideUsernsHelper()) {
    const fd = openRunningRoot(rec, false);
    if (fd !== null) Deno.env.set(ROOT_FD_ENV, `${rec.id}:${fd}`);
    try {
      return await runTrunInUserns(argv, loadIdMapping(), { mountNamespace: true });
    } finally {
      if (fd !== null) {
        closeFd(fd);
        Deno.env.delete(ROOT_FD_ENV);
      }
    }
  }
  const root = openContainerRoot(rec, dir);
  try {
    return await work(root);
  } finally {
    root.close();
  }
}
