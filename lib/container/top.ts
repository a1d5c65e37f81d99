/**
 * `trun top`: the host's `ps` run with the user's options, cut down to the
 * container's processes, so pids are the host's (Docker's `top`). The
 * container's processes are those of its PID namespace (every container
 * has its own); see `processesInPidNamespace` for how processes whose
 * namespace link a rootless user may not read are still found.
 */
import { processesInPidNamespace } from "../engine/state.ts";
import type { ContainerRecord } from "../store/mod.ts";
import {
  checkPsArgs,
  containerRows,
  DEFAULT_PS_ARGS,
  type ProcessTable,
  PsOutputError,
} from "./ps_output.ts";
import { containerStatus } from "./status.ts";

/** An error as Docker's daemon reports it: the CLI exits with status 1. */
function daemonError(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 1 });
}

/** Docker's answer for a container that is not running. */
function notRunning(rec: ContainerRecord): Error {
  return daemonError(`container ${rec.id} is not running`);
}

/** Runs `ps args`; its stdout, or an error with the first line ps wrote to stderr. */
async function runPs(args: readonly string[]): Promise<{ ok: boolean; out: string; err: string }> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command("ps", { args: [...args], stdin: "null" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw daemonError("ps: not found in PATH (install procps)");
    }
    throw e;
  }
  const decoder = new TextDecoder();
  return {
    ok: result.success,
    out: decoder.decode(result.stdout),
    err: decoder.decode(result.stderr).split("\n")[0] ?? "",
  };
}

/**
 * The processes of running container `rec` as `ps psArgs` (default `-ef`)
 * shows them. `ps` first gets the container's pids (`-q`, procps' quick
 * mode, which reads only those); options that refuse `-q` (forest
 * listings) are run again without it. Errors carry exit status 1, as
 * Docker's daemon errors do.
 */
export async function containerTop(
  rec: ContainerRecord,
  psArgs: readonly string[],
): Promise<ProcessTable> {
  if (containerStatus(rec) !== "running") throw notRunning(rec);
  const args = psArgs.length > 0 ? psArgs : DEFAULT_PS_ARGS;
  try {
    checkPsArgs(args);
    const pids = processesInPidNamespace(rec.pid);
    if (pids.length === 0) throw notRunning(rec);
    let ps = await runPs([...args, "-q", pids.join(",")]);
    if (!ps.ok) ps = await runPs(args);
    if (!ps.ok) throw daemonError(`ps: ${ps.err || "failed"}`);
    return containerRows(ps.out, new Set(pids));
  } catch (e) {
    if (e instanceof PsOutputError) throw daemonError(e.message);
    throw e;
  }
}
