/**
 * `trun tag` and `trun image tag`: give a stored image another name, as
 * `docker tag`.
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printHelp } from "./output.ts";
import { parseReference } from "../oci/reference.ts";
import { openStore } from "../store/mod.ts";

/** The grammar of `trun tag` and `trun image tag`. */
export const TAG = defineCommand({
  name: "tag",
  usage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
  summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
  minArgs: 2,
  maxArgs: 2,
  flags: {},
});

/** Runs `trun tag SOURCE TARGET`; prints nothing on success, as Docker. */
export function main(argv: string[], name = TAG.name): Promise<number> {
  const def = { ...TAG, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const [source, target] = p.args as [string, string];
  // A bad target is reported before the source is looked up, naming it.
  parseReference(target);
  const store = openStore();
  try {
    store.tagImage(source, target);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}
