/**
 * Internal commands beside detached containers, not meant to be typed:
 * `trun container-monitor ID --ready-fd N` (trun's own monitor, started by
 * `run -d` in a session of its own; see lib/container/monitor.ts) and
 * `trun container-cleanup ID` (conmon's exit command; lib/container/conmon.ts).
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printHelp } from "./output.ts";

const MONITOR = defineCommand({
  name: "container-monitor",
  usage: "CONTAINER --ready-fd N",
  summary: "(internal) the monitor beside a detached container",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    "ready-fd": { kind: "string", value: "N", help: "Descriptor that receives the start report" },
    "wait-record": {
      kind: "bool",
      help: "Started before the record exists: wait until the starter writes record",
    },
    "wait-attach": {
      kind: "bool",
      help: "Start the container only once the starter has attached (it writes go)",
    },
  },
});

const CLEANUP = defineCommand({
  name: "container-cleanup",
  usage: "CONTAINER",
  summary: "(internal) conmon's exit command: record the exit, tidy, --rm",
  minArgs: 1,
  maxArgs: 1,
  flags: {},
});

/** Runs conmon's exit command for a container; returns 0. */
export async function cleanupMain(argv: string[]): Promise<number> {
  const p = parseArgs(CLEANUP, argv);
  if (p.help) return printHelp(CLEANUP);
  const { cleanupAfterConmon } = await import("../container/conmon.ts");
  return await cleanupAfterConmon(p.args[0]!);
}

/** Runs the monitor; returns its exit status. */
export async function main(argv: string[]): Promise<number> {
  const p = parseArgs(MONITOR, argv);
  if (p.help) return printHelp(MONITOR);
  const { runMonitor } = await import("../container/monitor.ts");
  return await runMonitor(p.args[0]!, Number(p.flags["ready-fd"] ?? "3"), {
    waitRecord: p.flags["wait-record"],
    waitAttach: p.flags["wait-attach"],
  });
}
