/**
 * `trun top CONTAINER [ps OPTIONS]` (`container top`): the running
 * processes of a container as the host's `ps` shows them (default `-ef`),
 * with host pids, in Docker's table (tabwriter, columns at least 20 wide).
 */
import { defineCommand, parseArgs } from "./args.ts";
import { table } from "./format.ts";
import { printHelp, println } from "./output.ts";

/** The grammar of `trun top`: everything after the container is `ps`'s. */
export const TOP = defineCommand({
  name: "top",
  usage: "CONTAINER [ps OPTIONS]",
  summary: "Display the running processes of a container",
  minArgs: 1,
  interspersed: false,
  flags: {},
});

/** Runs `trun top` (`name`, or `container top`, names it in help and errors). */
export async function main(argv: string[], name = TOP.name): Promise<number> {
  const def = { ...TOP, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const [ref, ...psArgs] = p.args as [string, ...string[]];
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  const { containerTop } = await import("../container/top.ts");
  const store = openStore(undefined, { repair: false });
  let rec;
  try {
    rec = mustFind(store, ref);
  } finally {
    store.close();
  }
  const { titles, processes } = await containerTop(rec, psArgs);
  println(table([titles, ...processes], 20));
  return 0;
}
