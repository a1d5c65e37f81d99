/**
 * `trun container-monitor ID --ready-fd N`: internal. `run -d` starts it in
 * a session of its own to stay beside the container (see
 * lib/container/monitor.ts); it is not meant to be typed.
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
  },
});

/** Runs the monitor; returns its exit status. */
export async function main(argv: string[]): Promise<number> {
  const p = parseArgs(MONITOR, argv);
  if (p.help) return printHelp(MONITOR);
  const { runMonitor } = await import("../container/monitor.ts");
  return await runMonitor(p.args[0]!, Number(p.flags["ready-fd"] ?? "3"));
}
