/**
 * `trun attach` and `trun start -a [-i]`: connect the caller's terminal or
 * stdio to a container beside its monitor, until it exits (its exit status
 * is trun's) or the detach keys are typed (0).
 */
import { findContainer } from "./_container_common.ts";
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { ATTACH_FLAGS } from "./attach_flags.ts";
import { printHelp } from "./output.ts";
import type { AttachStreams } from "../container/attach_protocol.ts";
import type { ContainerRecord } from "../store/mod.ts";

/** The grammar of `trun attach`. */
export const ATTACH = defineCommand({
  name: "attach",
  usage: "[OPTIONS] CONTAINER",
  summary: "Attach local standard input, output, and error streams to a running container",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    "no-stdin": { kind: "bool", help: "Do not attach STDIN" },
    ...ATTACH_FLAGS,
  },
});

/** The detach keys of `--detach-keys`, or Docker's default; a usage error when malformed. */
export async function detachKeysFlag(
  def: Parameters<typeof printHelp>[0],
  value: string | undefined,
): Promise<Uint8Array> {
  const { DEFAULT_DETACH_KEYS, parseDetachKeys } = await import("../container/detach_keys.ts");
  try {
    return parseDetachKeys(value ?? DEFAULT_DETACH_KEYS);
  } catch (e) {
    throw new UsageError(def, (e as Error).message);
  }
}

/** How to attach to a container whose record is `rec`. */
export interface AttachRequest {
  /** The streams to carry. */
  streams: AttachStreams;
  /** The detach sequence. */
  detachKeys: Uint8Array;
  /** `--sig-proxy`. */
  sigProxy: boolean;
  /** Start it after connecting (`start -a`); else it must be running. */
  start: boolean;
}

/**
 * Attaches to `rec` (directory `dir`), starting it first when asked, and
 * returns trun's exit status: the container's, or 0 when detached.
 */
export async function attachToContainer(
  rec: ContainerRecord,
  dir: string,
  req: AttachRequest,
): Promise<number> {
  const { openStore } = await import("../store/mod.ts");
  const attach = await import("../container/attach.ts");
  const open = () => openStore(undefined, { repair: false });
  const userdata = `${dir}/userdata`;
  let conn = -1;
  let pid = rec.pid;
  if (req.start) {
    const { startDetached } = await import("../container/detached.ts");
    const report = await startDetached(rec, dir, () => {
      conn = attach.connectAttach(userdata, rec.name);
    });
    if (!report.ok) {
      if (conn >= 0) (await import("../../ffi/child_program.ts")).closeFd(conn);
      throw Object.assign(new Error(report.error), { exitCode: report.exitCode });
    }
    pid = report.pid;
  } else {
    conn = attach.connectAttach(userdata, rec.name);
  }
  const end = await attach.attachAndWait(
    open,
    {
      id: rec.id,
      dir,
      pid,
      autoRemove: rec.autoRemove,
    },
    conn,
    {
      userdata,
      streams: req.streams,
      tty: rec.tty,
      detachKeys: req.detachKeys,
      ...(req.sigProxy && !rec.tty ? { sigProxyPid: pid } : {}),
    },
  );
  return end.detached ? 0 : end.exitCode;
}

/** `trun attach`. */
export async function attachCommand(argv: string[], name = ATTACH.name): Promise<number> {
  const def = { ...ATTACH, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const detachKeys = await detachKeysFlag(def, p.flags["detach-keys"]);
  const { containerStatus } = await import("../container/status.ts");
  const { rec, dir } = await findContainer(p.args[0]!);
  if (containerStatus(rec) !== "running") {
    throw Object.assign(new Error("you cannot attach to a stopped container, start it first"), {
      exitCode: 1,
    });
  }
  const { isPaused } = await import("../container/pause.ts");
  if (isPaused(rec)) {
    throw Object.assign(new Error("You cannot attach to a paused container, unpause it first"), {
      exitCode: 1,
    });
  }
  return await attachToContainer(rec, dir, {
    streams: { stdin: rec.stdin === true && !p.flags["no-stdin"], stdout: true, stderr: true },
    detachKeys,
    sigProxy: p.flags["sig-proxy"],
    start: false,
  });
}
