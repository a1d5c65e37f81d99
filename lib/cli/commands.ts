/**
 * The command table: every trun command once, with its names, one line of
 * help, how to load it and whether it runs in the storage user namespace.
 * main.ts builds the whole command line from it, subcommand families
 * (`trun image …`) and help listings included.
 *
 * It stays tiny and imports nothing: each command's module is loaded by a
 * dynamic `import()` only when that command runs, so `trun run` pays for
 * no other command.
 */

/**
 * A command's entry point: the words after its name, and the name to show
 * in help and errors (the one typed, or its family's usual name for it:
 * `images`, `image ls`). Returns the exit status.
 */
export type CommandMain = (argv: string[], name: string) => Promise<number>;

/** One row of the table. */
export interface CommandEntry {
  /** The usual name: `run`, `image ls` (a family, then the subcommand). */
  name: string;
  /** Other names that run the same command, top-level or in a family: `images`, `image list`. */
  aliases?: readonly string[];
  /** One line for the help listings. */
  summary: string;
  /** Loads the command's module and returns its entry point; absent for a family (`image`). */
  load?: () => Promise<CommandMain>;
  /**
   * Creates or deletes files owned by image ids: rootless with subordinate
   * ids, main.ts runs it inside a user namespace helper (Podman's model).
   */
  storage?: boolean;
  /** Internal: runs when named, but no help listing shows it. */
  hidden?: boolean;
}

/**
 * Every command. The top-level help lists them in this order (by the name
 * each has at the top level); a family's help lists its subcommands
 * alphabetically.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "run",
    summary: "Create and run a new container",
    load: async () => (await import("./run.ts")).main,
  },
  {
    name: "info",
    summary: "Show what this host offers and what trun will use",
    load: async () => (await import("./info.ts")).infoCommand,
  },
  {
    name: "version",
    summary: "Show the trun version",
    load: async () => (await import("./info.ts")).versionCommand,
  },
  {
    name: "container ls",
    aliases: ["ps", "container list", "container ps"],
    summary: "List containers",
    load: async () => (await import("./ps.ts")).main,
  },
  {
    name: "container create",
    aliases: ["create"],
    summary: "Create a new container (run's options; start it with trun start)",
    load: async () => (await import("./run.ts")).main,
  },
  {
    name: "container start",
    aliases: ["start"],
    summary: "Start one or more stopped containers",
    load: async () => (await import("./container_ops.ts")).startCommand,
  },
  {
    name: "container exec",
    aliases: ["exec"],
    summary: "Run a command in a running container",
    load: async () => (await import("./exec.ts")).main,
  },
  {
    name: "container stop",
    aliases: ["stop"],
    summary: "Stop one or more running containers",
    load: async () => (await import("./container_ops.ts")).stopCommand,
  },
  {
    name: "container kill",
    aliases: ["kill"],
    summary: "Kill one or more running containers",
    load: async () => (await import("./container_ops.ts")).killCommand,
  },
  {
    name: "container rm",
    aliases: ["rm", "container remove"],
    summary: "Remove one or more containers",
    // Writable layers hold files of subordinate ids.
    storage: true,
    load: async () => (await import("./container_ops.ts")).rmCommand,
  },
  {
    name: "container wait",
    aliases: ["wait"],
    summary: "Block until containers stop, then print their exit codes",
    load: async () => (await import("./container_ops.ts")).waitCommand,
  },
  {
    name: "container logs",
    aliases: ["logs"],
    summary: "Fetch the logs of a container",
    load: async () => (await import("./logs.ts")).main,
  },
  {
    name: "container inspect",
    summary: "Display detailed information on one or more containers",
    load: async () => (await import("./inspect.ts")).containerInspectCommand,
  },
  {
    name: "container restart",
    aliases: ["restart"],
    summary: "Restart one or more containers",
    load: async () => (await import("./container_ops.ts")).restartCommand,
  },
  {
    name: "container rename",
    aliases: ["rename"],
    summary: "Rename a container",
    load: async () => (await import("./container_ops.ts")).renameCommand,
  },
  {
    name: "container top",
    aliases: ["top"],
    summary: "Display the running processes of a container",
    load: async () => (await import("./top.ts")).main,
  },
  {
    name: "container prune",
    summary: "Remove all stopped containers",
    // Writable layers hold files of subordinate ids.
    storage: true,
    load: async () => (await import("./container_ops.ts")).pruneCommand,
  },
  {
    name: "container",
    summary: "Manage containers",
  },
  {
    name: "container-monitor",
    summary: "(internal) the monitor beside a detached container",
    hidden: true,
    load: async () => (await import("./container_monitor.ts")).main,
  },
  {
    name: "container-cleanup",
    summary: "(internal) conmon's exit command for a detached container",
    hidden: true,
    load: async () => (await import("./container_monitor.ts")).cleanupMain,
  },
  {
    name: "runtime",
    summary:
      "The OCI runtime, with runc's command line (create, start, state, kill, delete, exec…)",
    load: async () => (await import("./runtime.ts")).main,
  },
  {
    name: "image pull",
    aliases: ["pull"],
    summary: "Download an image from a registry",
    storage: true,
    load: async () => (await import("./pull.ts")).main,
  },
  {
    name: "image push",
    aliases: ["push"],
    summary: "Upload an image to a registry",
    load: async () => (await import("./push.ts")).main,
  },
  {
    name: "image ls",
    aliases: ["images", "image list"],
    summary: "List images",
    load: async () => (await import("./images.ts")).main,
  },
  {
    name: "image rm",
    aliases: ["rmi", "image remove"],
    summary: "Remove one or more images",
    storage: true,
    load: async () => (await import("./rmi.ts")).main,
  },
  {
    name: "image tag",
    aliases: ["tag"],
    summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    load: async () => (await import("./tag.ts")).main,
  },
  {
    name: "image history",
    aliases: ["history"],
    summary: "Show the history of an image",
    load: async () => (await import("./history.ts")).main,
  },
  {
    name: "inspect",
    summary: "Return low-level information on containers and images",
    load: async () => (await import("./inspect.ts")).inspectCommand,
  },
  {
    name: "image inspect",
    summary: "Display detailed information on one or more images",
    load: async () => (await import("./inspect.ts")).imageInspectCommand,
  },
  {
    name: "image save",
    aliases: ["save"],
    summary: "Save one or more images to a tar archive (streamed to stdout by default)",
    load: async () => (await import("./save_load.ts")).saveCommand,
  },
  {
    name: "image load",
    aliases: ["load"],
    summary: "Load images from a tar archive or stdin",
    storage: true,
    load: async () => (await import("./save_load.ts")).loadCommand,
  },
  {
    name: "image prune",
    summary: "Remove unused images",
    storage: true,
    load: async () => (await import("./prune.ts")).main,
  },
  {
    name: "login",
    summary: "Log in to a registry",
    load: async () => (await import("./login.ts")).loginCommand,
  },
  {
    name: "logout",
    summary: "Log out from a registry",
    load: async () => (await import("./login.ts")).logoutCommand,
  },
  { name: "image", summary: "Manage images" },
];

/** The family a name belongs to: `image` for `image ls`, "" for a top-level name. */
function familyOf(name: string): string {
  const space = name.indexOf(" ");
  return space < 0 ? "" : name.slice(0, space);
}

/** The name an entry goes by in a family ("" for the top level), if it has one there. */
function nameIn(entry: CommandEntry, family: string): string | undefined {
  return [entry.name, ...(entry.aliases ?? [])].find((n) => familyOf(n) === family);
}

/** What the words on a command line name. */
export type Resolved =
  /** A command: its entry, the name to show, and the words after its name. */
  | {
    kind: "command";
    entry: CommandEntry;
    main: () => Promise<CommandMain>;
    name: string;
    argv: string[];
  }
  /** A family without a subcommand, or asked for help: show its listing. */
  | { kind: "family"; name: string }
  /** No such command (`family` is "" at the top level). */
  | { kind: "unknown"; family: string; word: string };

const HELP_WORDS = new Set(["--help", "-h", "help"]);

/**
 * Finds the command `argv` names: `images …`, `image ls …` or `image list
 * …` all find the `image ls` entry, shown as `images`, `image ls` and
 * `image ls`. `argv` must not be empty.
 */
export function resolveCommand(
  argv: readonly string[],
  table: readonly CommandEntry[] = COMMANDS,
): Resolved {
  const [word = "", ...rest] = argv;
  const find = (name: string) =>
    table.find((e) => e.name === name || (e.aliases ?? []).includes(name));
  const top = word.includes(" ") ? undefined : find(word);
  if (top === undefined) return { kind: "unknown", family: "", word };
  if (top.load !== undefined) {
    return { kind: "command", entry: top, main: top.load, name: nameIn(top, "")!, argv: rest };
  }
  const [sub, ...subArgv] = rest;
  if (sub === undefined || HELP_WORDS.has(sub)) return { kind: "family", name: word };
  const entry = sub.includes(" ") ? undefined : find(`${word} ${sub}`);
  if (entry?.load === undefined) return { kind: "unknown", family: word, word: sub };
  return { kind: "command", entry, main: entry.load, name: nameIn(entry, word)!, argv: subArgv };
}

/**
 * The help of the top level (`family` "") or of a family (`image`): its
 * commands with their summaries, Docker style.
 */
export function listingHelp(family = "", table: readonly CommandEntry[] = COMMANDS): string {
  const rows: [string, string][] = [];
  for (const e of table) {
    if (e.hidden) continue;
    const name = nameIn(e, family);
    if (name !== undefined) rows.push([family ? name.slice(family.length + 1) : name, e.summary]);
  }
  if (family) rows.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const summary = family
    ? table.find((e) => e.name === family)?.summary ?? ""
    : "A daemonless, rootless container runtime";
  const prefix = family ? `trun ${family}` : "trun";
  return [
    `Usage:  ${prefix} COMMAND${family ? "" : " [OPTIONS]"}`,
    "",
    summary,
    "",
    "Commands:",
    ...rows.map(([n, h]) => `  ${n.padEnd(10)}${h}`),
    "",
    `Run '${prefix} COMMAND --help' for more information on a command.`,
  ].join("\n");
}
