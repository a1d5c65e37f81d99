/**
 * `trun push` and `trun image push`: upload a stored image to the registry
 * its name points at, with Docker's output: `The push refers to repository
 * [NAME]`, one line per layer (`Preparing`, `Pushing`, `Pushed`, `Layer
 * already exists`; redrawn in place on a terminal), then `TAG: digest:
 * sha256:… size: N`. `-q` prints only the reference.
 *
 * The uploading is lib/image/push.ts; this module parses flags and renders
 * events.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import { PushDisplay, stdoutRenderer } from "./progress.ts";
import { parseReference } from "../oci/reference.ts";
import { pushImage } from "../image/push.ts";
import { openStore } from "../store/mod.ts";

/** The grammar of `trun push` and `trun image push`. */
export const PUSH = defineCommand({
  name: "push",
  usage: "[OPTIONS] NAME[:TAG]",
  summary: "Upload an image to a registry",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    quiet: { short: "q", kind: "bool", help: "Suppress verbose output" },
    "compression-format": {
      kind: "string",
      value: "FORMAT",
      help:
        "Compression of layers whose blob the store dropped and the registry lacks: gzip (default) or zstd",
    },
  },
});

/** Runs `trun push` (`name`, or `image push`, names it in help and errors); returns the exit status. */
export async function main(argv: string[], name = PUSH.name): Promise<number> {
  const def = { ...PUSH, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const input = p.args[0]!;
  const ref = parseReference(input);
  const quiet = p.flags.quiet;
  const compression = p.flags["compression-format"] ?? "gzip";
  if (compression !== "gzip" && compression !== "zstd") {
    throw new UsageError(
      def,
      `unsupported compression format "${compression}": use gzip or zstd`,
    );
  }
  const store = openStore();
  try {
    const renderer = quiet ? undefined : stdoutRenderer();
    if (renderer && !input.includes("@") && input.lastIndexOf(":") <= input.lastIndexOf("/")) {
      renderer.line(`Using default tag: ${ref.tag}`);
    }
    renderer?.line(`The push refers to repository [${ref.name}]`);
    // The config blob goes up too, but Docker shows only layers.
    const configId = store.findImage(ref.toString())?.id;
    const display = renderer
      ? new PushDisplay(renderer, new Set(configId !== undefined ? [configId] : []))
      : undefined;
    const result = await pushImage(ref, {
      store,
      compression,
      ...(display ? { onEvent: (e) => display.event(e) } : {}),
    });
    if (renderer) {
      renderer.line(
        `${ref.digest ?? ref.tag}: digest: ${result.digest} size: ${result.size}`,
      );
    } else println(ref.toString());
    return 0;
  } finally {
    store.close();
  }
}
