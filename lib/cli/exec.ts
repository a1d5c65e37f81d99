/**
 * `trun exec`: runs a command in a running container, through the engine's
 * join (the container's namespaces, cgroup, capabilities and no_new_privs),
 * with Docker's flags; returns the command's exit status.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp } from "./output.ts";

/** The grammar of `trun exec`. */
export const EXEC = defineCommand({
  name: "exec",
  usage: "[OPTIONS] CONTAINER COMMAND [ARG...]",
  summary: "Run a command in a running container",
  minArgs: 2,
  interspersed: false,
  flags: {
    interactive: { short: "i", kind: "bool", help: "Keep stdin open" },
    tty: { short: "t", kind: "bool", help: "Allocate a pseudo-terminal" },
    detach: { short: "d", kind: "bool", help: "Run the command in the background" },
    env: { short: "e", kind: "list", value: "NAME=VALUE", help: "Set an environment variable" },
    "env-file": { kind: "list", value: "FILE", help: "Read environment variables from a file" },
    workdir: { short: "w", kind: "string", value: "DIR", help: "Working directory" },
    user: { short: "u", kind: "string", value: "USER[:GROUP]", help: "User to run as" },
    privileged: { kind: "bool", help: "Give the command every capability trun has" },
  },
});

/** Runs `trun exec`. */
export async function main(argv: string[], name = EXEC.name): Promise<number> {
  const def = { ...EXEC, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const [ref, ...command] = p.args;
  if (!ref || command.length === 0) {
    throw new UsageError(def, `"trun exec" requires a container and a command`);
  }
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  const { execInContainer } = await import("../container/exec.ts");
  const store = openStore(undefined, { repair: false });
  let rec, dir;
  try {
    rec = mustFind(store, ref);
    dir = store.containerDir(rec.id);
  } finally {
    store.close();
  }
  const envFiles = p.flags["env-file"].map((f) => {
    try {
      return { name: f, text: Deno.readTextFileSync(f) };
    } catch (e) {
      throw new Error(`reading env file "${f}": ${e instanceof Error ? e.message : e}`);
    }
  });
  return await execInContainer(rec, dir, {
    command,
    interactive: p.flags.interactive,
    tty: p.flags.tty,
    detach: p.flags.detach,
    privileged: p.flags.privileged,
    env: p.flags.env,
    envFiles,
    ...(p.flags.workdir !== undefined ? { workdir: p.flags.workdir } : {}),
    ...(p.flags.user !== undefined ? { user: p.flags.user } : {}),
  });
}
