/**
 * The command table: every trun command once, with its names, one line of
 * help, how to load it and whether it runs in the storage user namespace.
 * main.ts builds the whole command line from it, subcommand families
 * (`trun image …`) and help listings included.
 *
 * It stays tiny and imports nothing at run time: each command's module is
 * loaded by a dynamic `import()` only when that command runs, so `trun
 * run` pays for no other command. Its grammar (flags and usage) is reached
 * the same lazy way, by `trun completion` only.
 */
import type { CommandDef } from "./args.ts";

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
   * Loads the command's module and returns its grammar (`defineCommand`),
   * for `trun completion`: every visible command has one, unless it parses
   * its own words (`runtime`).
   */
  grammar?: () => Promise<CommandDef>;
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
    grammar: async () => (await import("./run.ts")).RUN,
  },
  {
    name: "info",
    summary: "Show what this host offers and what trun will use",
    load: async () => (await import("./info.ts")).infoCommand,
    grammar: async () => (await import("./info.ts")).INFO_COMMAND,
  },
  {
    name: "version",
    summary: "Show the trun version",
    load: async () => (await import("./info.ts")).versionCommand,
    grammar: async () => (await import("./info.ts")).VERSION_COMMAND,
  },
  {
    name: "container ls",
    aliases: ["ps", "container list", "container ps"],
    summary: "List containers",
    load: async () => (await import("./ps.ts")).main,
    grammar: async () => (await import("./ps.ts")).PS,
  },
  {
    name: "container create",
    aliases: ["create"],
    summary: "Create a new container (run's options; start it with trun start)",
    load: async () => (await import("./run.ts")).main,
    grammar: async () => (await import("./run.ts")).CREATE,
  },
  {
    name: "container start",
    aliases: ["start"],
    summary: "Start one or more stopped containers",
    load: async () => (await import("./container_ops.ts")).startCommand,
    grammar: async () => (await import("./container_ops.ts")).START,
  },
  {
    name: "container exec",
    aliases: ["exec"],
    summary: "Run a command in a running container",
    load: async () => (await import("./exec.ts")).main,
    grammar: async () => (await import("./exec.ts")).EXEC,
  },
  {
    name: "container attach",
    aliases: ["attach"],
    summary: "Attach local standard input, output, and error streams to a running container",
    load: async () => (await import("./attach.ts")).attachCommand,
    grammar: async () => (await import("./attach.ts")).ATTACH,
  },
  {
    name: "container stop",
    aliases: ["stop"],
    summary: "Stop one or more running containers",
    load: async () => (await import("./container_ops.ts")).stopCommand,
    grammar: async () => (await import("./container_ops.ts")).STOP,
  },
  {
    name: "container kill",
    aliases: ["kill"],
    summary: "Kill one or more running containers",
    load: async () => (await import("./container_ops.ts")).killCommand,
    grammar: async () => (await import("./container_ops.ts")).KILL,
  },
  {
    name: "container rm",
    aliases: ["rm", "container remove"],
    summary: "Remove one or more containers",
    // Not a storage command: a running container is killed from the
    // caller's own user namespace; the layer goes through the storage
    // helper only when it must (lib/container/ops.ts removeHere).
    load: async () => (await import("./container_ops.ts")).rmCommand,
    grammar: async () => (await import("./container_ops.ts")).RM,
  },
  {
    name: "container wait",
    aliases: ["wait"],
    summary: "Block until containers stop, then print their exit codes",
    load: async () => (await import("./container_ops.ts")).waitCommand,
    grammar: async () => (await import("./container_ops.ts")).WAIT,
  },
  {
    name: "container logs",
    aliases: ["logs"],
    summary: "Fetch the logs of a container",
    load: async () => (await import("./logs.ts")).main,
    grammar: async () => (await import("./logs.ts")).LOGS,
  },
  {
    name: "container inspect",
    summary: "Display detailed information on one or more containers",
    load: async () => (await import("./inspect.ts")).containerInspectCommand,
    grammar: async () => (await import("./inspect.ts")).CONTAINER_INSPECT,
  },
  {
    name: "container restart",
    aliases: ["restart"],
    summary: "Restart one or more containers",
    load: async () => (await import("./container_ops.ts")).restartCommand,
    grammar: async () => (await import("./container_ops.ts")).RESTART,
  },
  {
    name: "container rename",
    aliases: ["rename"],
    summary: "Rename a container",
    load: async () => (await import("./container_ops.ts")).renameCommand,
    grammar: async () => (await import("./container_ops.ts")).RENAME,
  },
  {
    name: "container port",
    aliases: ["port"],
    summary: "List port mappings or a specific mapping for the container",
    load: async () => (await import("./port.ts")).main,
    grammar: async () => (await import("./port.ts")).PORT,
  },
  {
    name: "container top",
    aliases: ["top"],
    summary: "Display the running processes of a container",
    load: async () => (await import("./top.ts")).main,
    grammar: async () => (await import("./top.ts")).TOP,
  },
  {
    name: "container pause",
    aliases: ["pause"],
    summary: "Pause all processes within one or more containers",
    load: async () => (await import("./pause.ts")).pauseCommand,
    grammar: async () => (await import("./pause.ts")).PAUSE,
  },
  {
    name: "container unpause",
    aliases: ["unpause"],
    summary: "Unpause all processes within one or more containers",
    load: async () => (await import("./pause.ts")).unpauseCommand,
    grammar: async () => (await import("./pause.ts")).UNPAUSE,
  },
  {
    name: "container stats",
    aliases: ["stats"],
    summary: "Display a live stream of container(s) resource usage statistics",
    load: async () => (await import("./stats.ts")).main,
    grammar: async () => (await import("./stats.ts")).STATS,
  },
  {
    name: "container update",
    aliases: ["update"],
    summary: "Update configuration of one or more containers",
    load: async () => (await import("./update.ts")).main,
    grammar: async () => (await import("./update.ts")).UPDATE,
  },
  {
    name: "container prune",
    summary: "Remove all stopped containers",
    // Writable layers hold files of subordinate ids.
    storage: true,
    load: async () => (await import("./container_ops.ts")).pruneCommand,
    grammar: async () => (await import("./container_ops.ts")).PRUNE,
  },
  {
    name: "container commit",
    aliases: ["commit"],
    summary: "Create a new image from a container's changes",
    // Reads a writable layer of subordinate ids and unpacks the new layer.
    storage: true,
    load: async () => (await import("./commit.ts")).commitCommand,
    grammar: async () => (await import("./commit.ts")).COMMIT,
  },
  {
    name: "container diff",
    aliases: ["diff"],
    summary: "Inspect changes to files or directories on a container's filesystem",
    // Writable layers hold files of subordinate ids.
    storage: true,
    load: async () => (await import("./container_fs.ts")).diffCommand,
    grammar: async () => (await import("./container_fs.ts")).DIFF,
  },
  {
    // Not `storage`: rootless, it opens a running container's root, then
    // moves to the user namespace helper itself (lib/container/container_root.ts).
    name: "container cp",
    aliases: ["cp"],
    summary: "Copy files/folders between a container and the local filesystem",
    load: async () => (await import("./container_fs.ts")).cpCommand,
    grammar: async () => (await import("./container_fs.ts")).CP,
  },
  {
    name: "container export",
    aliases: ["export"],
    summary: "Export a container's filesystem as a tar archive",
    load: async () => (await import("./container_fs.ts")).exportCommand,
    grammar: async () => (await import("./container_fs.ts")).EXPORT,
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
    grammar: async () => (await import("./pull.ts")).PULL,
  },
  {
    name: "image push",
    aliases: ["push"],
    summary: "Upload an image to a registry",
    // Layers without their blob are rebuilt from files of subordinate ids.
    storage: true,
    load: async () => (await import("./push.ts")).main,
    grammar: async () => (await import("./push.ts")).PUSH,
  },
  {
    name: "image ls",
    aliases: ["images", "image list"],
    summary: "List images",
    load: async () => (await import("./images.ts")).main,
    grammar: async () => (await import("./images.ts")).IMAGES,
  },
  {
    name: "image rm",
    aliases: ["rmi", "image remove"],
    summary: "Remove one or more images",
    storage: true,
    load: async () => (await import("./rmi.ts")).main,
    grammar: async () => (await import("./rmi.ts")).RMI,
  },
  {
    name: "image tag",
    aliases: ["tag"],
    summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    load: async () => (await import("./tag.ts")).main,
    grammar: async () => (await import("./tag.ts")).TAG,
  },
  {
    name: "image history",
    aliases: ["history"],
    summary: "Show the history of an image",
    load: async () => (await import("./history.ts")).main,
    grammar: async () => (await import("./history.ts")).HISTORY,
  },
  {
    name: "inspect",
    summary: "Return low-level information on containers and images",
    load: async () => (await import("./inspect.ts")).inspectCommand,
    grammar: async () => (await import("./inspect.ts")).INSPECT,
  },
  {
    name: "image inspect",
    summary: "Display detailed information on one or more images",
    load: async () => (await import("./inspect.ts")).imageInspectCommand,
    grammar: async () => (await import("./inspect.ts")).IMAGE_INSPECT,
  },
  {
    name: "image save",
    aliases: ["save"],
    summary: "Save one or more images to a tar archive (streamed to stdout by default)",
    // Layer tars are rebuilt from files of subordinate ids.
    storage: true,
    load: async () => (await import("./save_load.ts")).saveCommand,
    grammar: async () => (await import("./save_load.ts")).SAVE,
  },
  {
    name: "image build",
    aliases: ["build"],
    summary: "Build an image from a Dockerfile",
    // Not `storage`: RUN starts containers as `trun run` does; each step's
    // store work goes to the storage helper (`build-step`).
    load: async () => (await import("./build.ts")).buildCommand,
    grammar: async () => (await import("./build.ts")).BUILD,
  },
  {
    name: "build-step",
    summary: "(internal) run one build step's store work",
    hidden: true,
    // Reads image layers and writes new ones of any owner.
    storage: true,
    load: async () => (await import("./build.ts")).buildStepCommand,
  },
  {
    name: "image import",
    aliases: ["import"],
    summary: "Import the contents from a tarball to create a filesystem image",
    // Unpacks files of any owner into the store.
    storage: true,
    load: async () => (await import("./commit.ts")).importCommand,
    grammar: async () => (await import("./commit.ts")).IMPORT,
  },
  {
    name: "image load",
    aliases: ["load"],
    summary: "Load images from a tar archive or stdin",
    storage: true,
    load: async () => (await import("./save_load.ts")).loadCommand,
    grammar: async () => (await import("./save_load.ts")).LOAD,
  },
  {
    name: "image prune",
    summary: "Remove unused images",
    storage: true,
    load: async () => (await import("./prune.ts")).main,
    grammar: async () => (await import("./prune.ts")).PRUNE,
  },
  {
    name: "completion",
    summary: "Generate the autocompletion script for the specified shell",
    load: async () => (await import("./completion.ts")).main,
    grammar: async () => (await import("./completion.ts")).COMPLETION,
  },
  {
    name: "login",
    summary: "Log in to a registry",
    load: async () => (await import("./login.ts")).loginCommand,
    grammar: async () => (await import("./login.ts")).LOGIN,
  },
  {
    name: "logout",
    summary: "Log out from a registry",
    load: async () => (await import("./login.ts")).logoutCommand,
    grammar: async () => (await import("./login.ts")).LOGOUT,
  },
  { name: "image", summary: "Manage images" },
  {
    name: "volume create",
    summary: "Create a volume",
    load: async () => (await import("./volume.ts")).createCommand,
    grammar: async () => (await import("./volume.ts")).VOLUME_CREATE,
  },
  {
    name: "volume ls",
    aliases: ["volume list"],
    summary: "List volumes",
    load: async () => (await import("./volume.ts")).lsCommand,
    grammar: async () => (await import("./volume.ts")).VOLUME_LS,
  },
  {
    name: "volume inspect",
    summary: "Display detailed information on one or more volumes",
    load: async () => (await import("./inspect.ts")).volumeInspectCommand,
    grammar: async () => (await import("./inspect.ts")).VOLUME_INSPECT,
  },
  {
    name: "volume rm",
    aliases: ["volume remove"],
    summary: "Remove one or more volumes",
    // Not a storage command: -f kills the volume's containers from the
    // caller's own user namespace; files of subordinate ids go through the
    // storage helper only when they must (lib/cli/volume.ts removeVolume).
    load: async () => (await import("./volume.ts")).rmCommand,
    grammar: async () => (await import("./volume.ts")).VOLUME_RM,
  },
  {
    name: "volume prune",
    summary: "Remove unused local volumes",
    storage: true,
    load: async () => (await import("./volume.ts")).pruneCommand,
    grammar: async () => (await import("./volume.ts")).VOLUME_PRUNE,
  },
  { name: "volume", summary: "Manage volumes" },
  {
    name: "volume-sweep",
    summary: "(internal) delete the data of removed volumes",
    hidden: true,
    // Their files may belong to subordinate ids.
    storage: true,
    load: async () => (await import("./volume.ts")).sweepCommand,
  },
  {
    name: "network create",
    summary: "Create a network",
    load: async () => (await import("./network.ts")).createCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_CREATE,
  },
  {
    name: "network ls",
    aliases: ["network list"],
    summary: "List networks",
    load: async () => (await import("./network.ts")).lsCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_LS,
  },
  {
    name: "network inspect",
    summary: "Display detailed information on one or more networks",
    load: async () => (await import("./inspect.ts")).networkInspectCommand,
    grammar: async () => (await import("./inspect.ts")).NETWORK_INSPECT,
  },
  {
    name: "network rm",
    aliases: ["network remove"],
    summary: "Remove one or more networks",
    // -f removes the containers on it, with files of subordinate ids.
    storage: true,
    load: async () => (await import("./network.ts")).rmCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_RM,
  },
  {
    name: "network prune",
    summary: "Remove all unused networks",
    load: async () => (await import("./network.ts")).pruneCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_PRUNE,
  },
  {
    name: "network connect",
    summary: "Connect a container to a network",
    load: async () => (await import("./network.ts")).connectCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_CONNECT,
  },
  {
    name: "network disconnect",
    summary: "Disconnect a container from a network",
    load: async () => (await import("./network.ts")).disconnectCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_DISCONNECT,
  },
  { name: "network", summary: "Manage networks" },
  {
    name: "network-holder",
    summary: "(internal) keep the shared network namespace of user-defined networks",
    hidden: true,
    load: async () => (await import("./network.ts")).holderCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_HOLDER,
  },
  {
    name: "network-forwarder",
    summary: "(internal) forward a container's published ports on user-defined networks",
    hidden: true,
    load: async () => (await import("./network.ts")).forwarderCommand,
    grammar: async () => (await import("./network.ts")).NETWORK_FORWARDER,
  },
  {
    name: "volume-copyup",
    summary: "(internal) copy an image's content into an empty volume",
    hidden: true,
    // Copies files with the image's owners.
    storage: true,
    load: async () => (await import("./volume.ts")).copyUpCommand,
  },
  {
    name: "system df",
    summary: "Show disk usage: images, containers, local volumes",
    // Measures directories of subordinate ids (mode 0700) that only the
    // storage user namespace can read.
    storage: true,
    load: async () => (await import("./system.ts")).dfCommand,
    grammar: async () => (await import("./system.ts")).SYSTEM_DF,
  },
  {
    name: "system prune",
    summary: "Remove unused data",
    // Removes writable layers, volumes and image layers.
    storage: true,
    load: async () => (await import("./system.ts")).pruneCommand,
    grammar: async () => (await import("./system.ts")).SYSTEM_PRUNE,
  },
  { name: "system", summary: "Manage trun" },
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
  // Names of 10 or more letters (`completion`) still get a space before their summary.
  const width = Math.max(10, ...rows.map(([n]) => n.length + 1));
  return [
    `Usage:  ${prefix} COMMAND${family ? "" : " [OPTIONS]"}`,
    "",
    summary,
    "",
    "Commands:",
    ...rows.map(([n, h]) => `  ${n.padEnd(width)}${h}`),
    "",
    `Run '${prefix} COMMAND --help' for more information on a command.`,
  ].join("\n");
}
