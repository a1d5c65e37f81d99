/**
 * `exec` into a detached container: the process is the container's own
 * (its spec's environment, capabilities, rlimits and no_new_privs) with
 * the user's changes (command, -e, -w, -u), started in the container's
 * namespaces and cgroup by the engine's join.
 */
import { closeFd, waitChild } from "../../ffi/child_program.ts";
import { openPath } from "../../ffi/fs.ts";
import { O } from "../../ffi/syscalls.ts";
import { processConfig } from "../engine/config.ts";
import { executablesOf, exitCodeOf } from "../engine/executor.ts";
import { spawnInContainer } from "../engine/join.ts";
import { sessionKeyringName } from "../engine/program.ts";
import { seccompPlan } from "../engine/seccomp_config.ts";
import type { ContainerConfig } from "../engine/config.ts";
import { buildEnvironment, type EnvFile } from "../spec/env.ts";
import { capabilityList, capabilitySets } from "../spec/capabilities.ts";
import { ownBoundingSet } from "./facts.ts";
import { resolveUser } from "../spec/user.ts";
import { exeSealNeeded, hasOwnUserNamespace, reexecSealed } from "../runtime/exe_seal.ts";
import type { ContainerRecord } from "../store/mod.ts";
import { containerPaths } from "./detached.ts";
import { isPaused } from "./pause.ts";
import { containerStatus } from "./status.ts";

/** What the user asked of `exec`. */
export interface ExecRequest {
  /** argv. */
  command: string[];
  /** `-i`: the process reads trun's stdin (else /dev/null). */
  interactive: boolean;
  /** `-t`. */
  tty: boolean;
  /** `-d`. */
  detach: boolean;
  /** `-e`. */
  env: string[];
  /** `--env-file`. */
  envFiles: EnvFile[];
  /** `-w`. */
  workdir?: string;
  /** `-u`. */
  user?: string;
  /** `--privileged`: every capability trun has, instead of the container's. */
  privileged?: boolean;
}

function readOr(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** Runs `req` in container `rec` (directory `dir`); returns its exit status (0 with `-d`). */
export async function execInContainer(
  rec: ContainerRecord,
  dir: string,
  req: ExecRequest,
): Promise<number> {
  if (containerStatus(rec) !== "running") {
    throw Object.assign(
      new Error(`container ${rec.id.slice(0, 12)} is not running`),
      { exitCode: 1 },
    );
  }
  if (isPaused(rec)) {
    throw Object.assign(
      new Error(`Container ${rec.id} is paused, unpause the container before exec`),
      { exitCode: 1 },
    );
  }
  const spec = JSON.parse(Deno.readTextFileSync(containerPaths(dir).spec));
  const base = processConfig(spec.process);
  // The container's filter applies to every process in it.
  const seccomp = spec.linux?.seccomp ? seccompPlan(spec.linux.seccomp) : undefined;
  // The container's own account files, as it sees them now.
  const root = `/proc/${rec.pid}/root`;
  let user = { uid: base.uid, gid: base.gid, additionalGids: base.additionalGids, home: "/" };
  if (req.user !== undefined) {
    user = resolveUser(req.user, {
      passwd: readOr(`${root}/etc/passwd`),
      group: readOr(`${root}/etc/group`),
    });
  }
  const hostname = spec.hostname ?? rec.id.slice(0, 12);
  const imageEnv = base.env;
  const env = buildEnvironment({
    imageEnv,
    envFiles: req.envFiles,
    envFlags: req.env,
    hostEnv: Deno.env.toObject(),
    hostname,
    home: user.home,
    tty: req.tty,
  });
  const proc = {
    ...base,
    args: req.command,
    env,
    cwd: req.workdir ?? base.cwd,
    uid: user.uid,
    gid: user.gid,
    additionalGids: user.additionalGids,
    terminal: req.tty,
  };
  if (req.privileged) {
    const available = ownBoundingSet();
    const sets = capabilitySets(
      capabilityList({ privileged: true, ...(available ? { available } : {}) }),
      user.uid,
      {},
    );
    proc.capabilities = processConfig({ ...spec.process, capabilities: sets }).capabilities;
  }
  // The joining process is a clone of this one: seal trun's binary first
  // when the container's root could reach it (exe_seal.ts). Nothing was
  // changed yet, so the command can start over.
  const question = {
    bounding: [...base.capabilities.bounding, ...proc.capabilities.bounding],
    ownUserNamespace: hasOwnUserNamespace(rec.pid),
  };
  if (exeSealNeeded(question)) reexecSealed();
  delete (proc as { consoleSize?: unknown }).consoleSize;
  if (req.tty) {
    const { terminalSize } = await import("../engine/tty_relay.ts");
    const { rows, columns } = terminalSize();
    (proc as { consoleSize?: { rows: number; columns: number } }).consoleSize = { rows, columns };
  }
  const executables = executablesOf({ process: proc } as ContainerConfig);
  const tty = req.tty
    ? { ...await import("../../ffi/socket.ts"), ...await import("../engine/tty_relay.ts") }
    : undefined;
  const pair = tty?.socketPair();
  const nul = req.interactive || req.tty
    ? undefined
    : openPath("/dev/null", O.RDONLY | O.CLOEXEC, `opening "/dev/null"`);
  let relay;
  try {
    const received = pair ? tty!.receiveFd(pair[0]) : undefined;
    const pid = await spawnInContainer(rec.pid, {
      process: proc,
      executables,
      sessionKeyring: sessionKeyringName(rec.id),
      // Into the container's cgroup too (its stop kills the exec'd process
      // with the rest), when it got one.
      ...(rec.cgroup && cgroupExists(rec.cgroup) ? { cgroup: rec.cgroup } : {}),
      ...(pair ? { consoleSocket: pair[1] } : {}),
      ...(nul !== undefined ? { stdinFd: nul } : {}),
      ...(seccomp ? { seccomp } : {}),
    });
    if (req.detach) return 0;
    if (received) {
      const master = await received;
      if (master !== null) {
        tty!.prepareTty(master);
        relay = tty!.startTtyRelay(master, { forwardStdin: req.interactive });
      }
    }
    const status = await waitChild(pid);
    await relay?.output;
    return exitCodeOf(status);
  } finally {
    relay?.stop();
    if (pair) { for (const fd of pair) closeFd(fd); }
    if (nul !== undefined) closeFd(nul);
  }
}

/** Whether the container's cgroup directory is there (its placement may have been refused). */
function cgroupExists(dir: string): boolean {
  try {
    return Deno.statSync(`${dir}/cgroup.procs`).isFile;
  } catch {
    return false;
  }
}
