/**
 * `trun pull` and `trun image pull`: download an image into the store with
 * Docker's output. On a terminal the layer lines are redrawn in place
 * (`Downloading [==>   ]`), otherwise one plain line per state change;
 * then `Digest:`, `Status:` (`Downloaded newer image` or `Image is up to
 * date`) and the fully qualified reference, which is all `-q` prints.
 *
 * The pulling itself is lib/image/pull.ts; this module parses flags and
 * renders events. Rootless with subordinate ids, main.ts already runs it
 * inside the user namespace helper, so unpacking here keeps image owners.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println, warn } from "./output.ts";
import { PullDisplay, stdoutRenderer } from "./progress.ts";
import { parseReference } from "../oci/reference.ts";
import { parsePlatform, type Platform } from "../oci/manifest.ts";
import { pullImage } from "../image/pull.ts";
import { openStore } from "../store/mod.ts";
import { ownershipMode } from "../runtime/userns_exec.ts";

/** The grammar of `trun pull` and `trun image pull`. */
export const PULL = defineCommand({
  name: "pull",
  usage: "[OPTIONS] NAME[:TAG|@DIGEST]",
  summary: "Download an image from a registry",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    quiet: { short: "q", kind: "bool", help: "Suppress verbose output" },
    platform: {
      kind: "string",
      value: "OS/ARCH[/VARIANT]",
      help: "Pull the image for this platform (default: this machine's)",
    },
  },
});

// Docker downloads three layers at a time (dockerd's max-concurrent-downloads).
const MAX_PARALLEL = 3;

/** True when the user typed neither a tag nor a digest (Docker then says "Using default tag"). */
function nameOnly(input: string): boolean {
  return !input.includes("@") && input.lastIndexOf(":") <= input.lastIndexOf("/");
}

/** Runs `trun pull` (`name`, or `image pull`, names it in help and errors); returns the exit status. */
export async function main(argv: string[], name = PULL.name): Promise<number> {
  const def = { ...PULL, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const input = p.args[0]!;
  const ref = parseReference(input);
  const platformSpec = p.flags.platform;
  let platform: Platform | undefined;
  if (platformSpec !== undefined) {
    try {
      platform = parsePlatform(platformSpec);
    } catch (e) {
      throw new UsageError(def, (e as Error).message);
    }
  }
  const quiet = p.flags.quiet;
  const renderer = quiet ? undefined : stdoutRenderer();
  const display = renderer ? new PullDisplay(renderer) : undefined;

  const store = openStore();
  try {
    const before = store.findImage(ref.toString())?.id;
    if (renderer && nameOnly(input)) renderer.line(`Using default tag: ${ref.tag}`);
    const result = await pullImage(ref, {
      store,
      maxParallel: MAX_PARALLEL,
      ...(platform !== undefined ? { platform } : {}),
      ...ownershipMode(),
      onEvent: (e) => {
        if (e.type === "resolving") {
          renderer?.line(`${ref.digest ?? ref.tag}: Pulling from ${ref.repository}`);
        } else display?.event(e);
      },
    });
    for (const w of result.warnings) warn(w);
    if (renderer && display) {
      const upToDate = before === result.configDigest && result.downloaded === 0 &&
        !display.changed;
      display.finish(upToDate);
      renderer.line(`Digest: ${result.digest}`);
      renderer.line(
        `Status: ${
          upToDate ? "Image is up to date for" : "Downloaded newer image for"
        } ${ref.familiar}`,
      );
    }
    // The reference is the one line scripts read, also with -q.
    if (renderer) renderer.line(ref.toString());
    else println(ref.toString());
    return 0;
  } finally {
    store.close();
  }
}
