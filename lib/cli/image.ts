/**
 * `trun image SUBCOMMAND`: Docker's management command for images. Each
 * subcommand is the same code as its top-level form (`image ls` is
 * `images`, `image rm` is `rmi`), named `image …` in help and errors. The
 * modules load lazily, like main.ts's commands.
 */
import { type CommandDef, UsageError } from "./args.ts";
import { println } from "./output.ts";

type Run = (argv: string[]) => Promise<number>;

/** Subcommands, their loaders and one line of help each. */
const SUBCOMMANDS: Record<string, [() => Promise<Run>, string]> = {
  history: [
    () =>
      import("./images.ts").then((m) => (a) => m.historyCommand(a, m.historyDef("image history"))),
    "Show the history of an image",
  ],
  inspect: [
    () =>
      import("./images.ts").then((m) => (a) => m.inspectCommand(a, m.inspectDef("image inspect"))),
    "Display detailed information on one or more images",
  ],
  load: [
    () => import("./save_load.ts").then((m) => (a) => m.loadCommand(a, m.loadDef("image load"))),
    "Load images from a tar archive or stdin",
  ],
  ls: [
    () => import("./images.ts").then((m) => (a) => m.imagesCommand(a, m.imagesDef("image ls"))),
    "List images",
  ],
  prune: [
    () => import("./images.ts").then((m) => (a) => m.pruneCommand(a, m.pruneDef("image prune"))),
    "Remove unused images",
  ],
  pull: [
    () => import("./pull.ts").then((m) => (a) => m.pullCommand(a, m.pullDef("image pull"))),
    "Download an image from a registry",
  ],
  push: [
    () => import("./push.ts").then((m) => (a) => m.pushCommand(a, m.pushDef("image push"))),
    "Upload an image to a registry",
  ],
  rm: [
    () => import("./images.ts").then((m) => (a) => m.rmiCommand(a, m.rmiDef("image rm"))),
    "Remove one or more images",
  ],
  save: [
    () => import("./save_load.ts").then((m) => (a) => m.saveCommand(a, m.saveDef("image save"))),
    "Save one or more images to a tar archive (streamed to stdout by default)",
  ],
  tag: [
    () => import("./images.ts").then((m) => (a) => m.tagCommand(a, m.tagDef("image tag"))),
    "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
  ],
};

// `image list` is Docker's alias of `image ls`. (`image remove` is left out:
// main.ts runs `image rm` in the user namespace helper by that name.)
const ALIASES: Record<string, string> = { list: "ls" };

/** The grammar of `trun image`, for its help and usage errors. */
export const IMAGE: CommandDef = {
  name: "image",
  usage: "COMMAND",
  summary: "Manage images",
  interspersed: false,
  flags: [],
};

/** The help of `trun image`: its subcommands, Docker style. */
export function imageHelp(): string {
  const rows = Object.entries(SUBCOMMANDS).map(([n, [, h]]) => `  ${n.padEnd(10)}${h}`);
  return [
    "Usage:  trun image COMMAND",
    "",
    "Manage images",
    "",
    "Commands:",
    ...rows,
    "",
    "Run 'trun image COMMAND --help' for more information on a command.",
  ].join("\n");
}

/** Runs `trun image SUBCOMMAND ...`. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    println(imageHelp());
    return 0;
  }
  const entry = SUBCOMMANDS[ALIASES[name] ?? name];
  if (entry === undefined) {
    throw new UsageError(IMAGE, `'${name}' is not a trun image command`);
  }
  return await (await entry[0]())(rest);
}
