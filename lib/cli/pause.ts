/**
 * `trun pause` and `trun unpause` (`container pause`/`unpause`): freeze or
 * thaw every process of one or more running containers, as Docker does,
 * through each container's own cgroup (lib/container/pause.ts).
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printHelp } from "./output.ts";

/** The grammar of `trun pause`. */
export const PAUSE = defineCommand({
  name: "pause",
  usage: "CONTAINER [CONTAINER...]",
  summary: "Pause all processes within one or more containers",
  minArgs: 1,
  flags: {},
});

/** The grammar of `trun unpause`. */
export const UNPAUSE = defineCommand({
  name: "unpause",
  usage: "CONTAINER [CONTAINER...]",
  summary: "Unpause all processes within one or more containers",
  minArgs: 1,
  flags: {},
});

/** Pauses (`frozen`) or unpauses each container named; exit 1 when any failed, as Docker. */
async function eachFrozen(argv: string[], name: string, frozen: boolean): Promise<number> {
  const def = { ...(frozen ? PAUSE : UNPAUSE), name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { eachRecord } = await import("./container_ops.ts");
  const { pauseContainer, unpauseContainer } = await import("../container/pause.ts");
  return await eachRecord(p.args, (rec) => frozen ? pauseContainer(rec) : unpauseContainer(rec));
}

/** `trun pause`. */
export function pauseCommand(argv: string[], name = PAUSE.name): Promise<number> {
  return eachFrozen(argv, name, true);
}

/** `trun unpause`. */
export function unpauseCommand(argv: string[], name = UNPAUSE.name): Promise<number> {
  return eachFrozen(argv, name, false);
}
