/**
 * `trun update` (`container update`): new resource limits or restart
 * policy for one or more containers, running or not, as `docker update`.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, warn } from "./output.ts";
import { messageOf } from "./_image_common.ts";
import { RESOURCE_FLAGS, resourceFlagValues } from "./resource_flags.ts";
import type { RestartPolicy } from "../container/restart.ts";

/** The grammar of `trun update`. */
export const UPDATE = defineCommand({
  name: "update",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Update configuration of one or more containers",
  minArgs: 1,
  flags: {
    ...RESOURCE_FLAGS,
    restart: {
      kind: "string",
      value: "string",
      help: "Restart policy to apply when a container exits",
    },
  },
});

/** Runs `trun update`. */
export async function main(argv: string[], name = UPDATE.name): Promise<number> {
  const def = { ...UPDATE, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { parseResourceFlags, hasResources, ResourceError } = await import(
    "../spec/resources.ts"
  );
  let change;
  try {
    change = parseResourceFlags(resourceFlagValues(p.flags), navigator.hardwareConcurrency);
  } catch (e) {
    if (e instanceof ResourceError) throw new UsageError(def, e.message);
    throw e;
  }
  let restart: RestartPolicy | undefined;
  if (p.flags.restart !== undefined) {
    const { parseRestartPolicy } = await import("../container/restart.ts");
    try {
      restart = parseRestartPolicy(p.flags.restart);
    } catch (e) {
      throw new UsageError(def, messageOf(e));
    }
  }
  if (!hasResources(change) && restart === undefined) {
    throw Object.assign(
      new Error("You must provide one or more flags when using this command."),
      { exitCode: 1 },
    );
  }
  const { eachRecord } = await import("./container_ops.ts");
  const { updateContainerResources } = await import("../container/update.ts");
  return await eachRecord(p.args, (rec, dir, store) => {
    if (restart !== undefined && rec.autoRemove && restart.name !== "no") {
      throw new Error(
        `Cannot update container ${rec.id}: Restart policy cannot be updated because AutoRemove is enabled for the container`,
      );
    }
    if (hasResources(change)) {
      for (const w of updateContainerResources(rec, dir, change)) warn(w);
    }
    if (restart !== undefined) {
      store.updateRecord(rec.id, (r) => ({ ...r, restartPolicy: restart }));
    }
  });
}
