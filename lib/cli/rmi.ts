/**
 * `trun rmi` and `trun image rm`: untag and delete images, with Docker's
 * `Untagged:` and `Deleted:` lines. Rootless with subordinate ids, main.ts
 * runs it inside the user namespace helper, so layers owned by image ids
 * can be deleted.
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printError, printHelp, println } from "./output.ts";
import { familiar, messageOf } from "./_image_common.ts";
import { openStore } from "../store/mod.ts";

/** The grammar of `trun rmi` and `trun image rm`. */
export const RMI = defineCommand({
  name: "rmi",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  summary: "Remove one or more images",
  minArgs: 1,
  flags: {
    force: {
      short: "f",
      kind: "bool",
      help: "Remove an image with several tags; untag one a container uses",
    },
  },
});

/**
 * Runs `trun rmi`: each image in turn, `Untagged:` and `Deleted:` lines as
 * Docker prints them. A failure is reported and the others still go; the
 * status is 125 if any failed.
 */
export function main(argv: string[], name = RMI.name): Promise<number> {
  const def = { ...RMI, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const force = p.flags.force;
  const store = openStore();
  let failed = false;
  try {
    for (const query of p.args) {
      try {
        const result = store.removeImage(query, { force });
        for (const r of result.untagged) println(`Untagged: ${familiar(r)}`);
        for (const d of result.deleted) println(`Deleted: ${d}`);
      } catch (e) {
        failed = true;
        printError(messageOf(e));
      }
    }
  } finally {
    store.close();
  }
  return Promise.resolve(failed ? 125 : 0);
}
