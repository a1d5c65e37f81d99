/**
 * `trun pause` and `trun unpause` (`container pause`/`unpause`): freeze or
 * thaw every process of one or more running containers, as Docker does,
 * through each container's own cgroup (lib/container/pause.ts).
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printError, printHelp, println } from "./output.ts";
import { messageOf } from "./_image_common.ts";

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
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  const { pauseContainer, unpauseContainer } = await import("../container/pause.ts");
  let failed = false;
  for (const ref of p.args) {
    try {
      const store = openStore(undefined, { repair: false });
      let rec;
      try {
        rec = mustFind(store, ref);
      } finally {
        store.close();
      }
      await (frozen ? pauseContainer(rec) : unpauseContainer(rec));
      println(ref);
    } catch (e) {
      failed = true;
      printError(messageOf(e));
    }
  }
  return failed ? 1 : 0;
}

/** `trun pause`. */
export function pauseCommand(argv: string[], name = PAUSE.name): Promise<number> {
  return eachFrozen(argv, name, true);
}

/** `trun unpause`. */
export function unpauseCommand(argv: string[], name = UNPAUSE.name): Promise<number> {
  return eachFrozen(argv, name, false);
}
