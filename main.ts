/**
 * trun's entry point: picks the command and runs it. Command modules load
 * lazily so `trun run` pays only for what it uses. The only place that calls
 * `Deno.exit`.
 */
import { UsageError } from "./lib/cli/args.ts";
import { printError, println } from "./lib/cli/output.ts";

type CommandModule = { main(argv: string[]): Promise<number> };

/** Commands and their modules, with one line of help each. */
const COMMANDS: Record<string, [() => Promise<CommandModule>, string]> = {
  run: [() => import("./lib/cli/run.ts"), "Create and run a new container"],
  info: [
    () => import("./lib/cli/info.ts").then((m) => ({ main: m.infoCommand })),
    "Show what this host offers and what trun will use",
  ],
  version: [
    () => import("./lib/cli/info.ts").then((m) => ({ main: m.versionCommand })),
    "Show the trun version",
  ],
  pull: [() => import("./lib/cli/pull.ts"), "Download an image from a registry"],
  push: [() => import("./lib/cli/push.ts"), "Upload an image to a registry"],
  images: [
    () => import("./lib/cli/images.ts").then((m) => ({ main: m.imagesCommand })),
    "List images",
  ],
  rmi: [
    () => import("./lib/cli/images.ts").then((m) => ({ main: m.rmiCommand })),
    "Remove one or more images",
  ],
  tag: [
    () => import("./lib/cli/images.ts").then((m) => ({ main: m.tagCommand })),
    "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
  ],
  history: [
    () => import("./lib/cli/images.ts").then((m) => ({ main: m.historyCommand })),
    "Show the history of an image",
  ],
  inspect: [
    () =>
      import("./lib/cli/images.ts").then((m) => ({
        main: (argv: string[]) => m.inspectCommand(argv, m.inspectDef("inspect")),
      })),
    "Return low-level information on images",
  ],
  save: [
    () => import("./lib/cli/save_load.ts").then((m) => ({ main: m.saveCommand })),
    "Save one or more images to a tar archive (streamed to stdout by default)",
  ],
  load: [
    () => import("./lib/cli/save_load.ts").then((m) => ({ main: m.loadCommand })),
    "Load images from a tar archive or stdin",
  ],
  login: [
    () => import("./lib/cli/login.ts").then((m) => ({ main: m.loginCommand })),
    "Log in to a registry",
  ],
  logout: [
    () => import("./lib/cli/login.ts").then((m) => ({ main: m.logoutCommand })),
    "Log out from a registry",
  ],
  image: [() => import("./lib/cli/image.ts"), "Manage images"],
};

/**
 * Commands that create or delete files owned by image ids. Rootless with
 * subordinate ids they run inside a user namespace helper (Podman's model).
 */
const STORAGE_COMMANDS = new Set([
  "pull",
  "rmi",
  "load",
  "image pull",
  "image rm",
  "image prune",
  "image load",
]);

/** The command's key in STORAGE_COMMANDS: `pull`, or `image prune` for the image family. */
function storageKey(name: string, rest: string[]): string {
  return name === "image" ? `image ${rest[0] ?? ""}` : name;
}

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([n, [, h]]) => `  ${n.padEnd(10)}${h}`);
  return [
    "Usage:  trun COMMAND [OPTIONS]",
    "",
    "A daemonless, rootless container runtime",
    "",
    "Commands:",
    ...rows,
    "",
    "Run 'trun COMMAND --help' for more information on a command.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    println(usage());
    return 0;
  }
  if (name === "--version" || name === "-v") {
    return await (await import("./lib/cli/info.ts")).versionCommand([]);
  }
  const entry = COMMANDS[name];
  if (!entry) {
    printError(`'${name}' is not a trun command.\nSee 'trun --help'`);
    return 125;
  }
  try {
    if (STORAGE_COMMANDS.has(storageKey(name, rest))) {
      const { storageUsernsMapping, runTrunInUserns } = await import(
        "./lib/runtime/userns_exec.ts"
      );
      const mapping = storageUsernsMapping();
      if (mapping) return await runTrunInUserns(argv, mapping);
    }
    return await (await entry[0]()).main(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      printError(`${e.message}\nSee 'trun ${e.command.name} --help'.`);
      return 125;
    }
    const code = (e as { exitCode?: unknown }).exitCode;
    printError(e instanceof Error ? e.message : String(e));
    return typeof code === "number" ? code : 125;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
