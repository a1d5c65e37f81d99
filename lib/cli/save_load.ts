/**
 * `trun save` and `trun load` (also `trun image save|load`): images to and
 * from tar archives, as `docker save` / `docker load` (docker-archive, the
 * default) and `podman save --format oci-archive`. `save` writes to `-o
 * FILE` or to stdout, and refuses a terminal as Docker does; `load` reads
 * `-i FILE` or stdin (plain, gzip or zstd) and prints `Loaded image: REF`
 * per tag, or `Loaded image ID: sha256:…` for an untagged image.
 *
 * The archive formats are lib/image/archive.ts; rootless with subordinate
 * ids main.ts runs `load` inside the user namespace helper, so unpacking
 * keeps the images' file owners.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import { familiar } from "./_image_common.ts";
import { type ArchiveFormat, loadArchive, saveImages } from "../image/archive.ts";
import { parsePlatform } from "../oci/manifest.ts";
import { openStore } from "../store/mod.ts";
import { ownershipMode } from "../runtime/userns_exec.ts";

/** The grammar of `trun save` and `trun image save`. */
export const SAVE = defineCommand({
  name: "save",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  summary: "Save one or more images to a tar archive (streamed to stdout by default)",
  minArgs: 1,
  flags: {
    output: {
      short: "o",
      kind: "string",
      value: "FILE",
      help: "Write to a file, instead of stdout",
    },
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Archive format: docker-archive (default) or oci-archive",
    },
  },
});

/** The grammar of `trun load` and `trun image load`. */
export const LOAD = defineCommand({
  name: "load",
  usage: "[OPTIONS]",
  summary: "Load images from a tar archive or stdin",
  maxArgs: 0,
  flags: {
    input: {
      short: "i",
      kind: "string",
      value: "FILE",
      help: "Read from a tar archive file (plain, gzip or zstd), instead of stdin",
    },
    // Docker's -q hides the progress bars and keeps the result lines;
    // trun draws no progress while loading, so -q changes nothing.
    quiet: { short: "q", kind: "bool", help: "Suppress the load progress" },
    platform: {
      kind: "string",
      value: "OS/ARCH[/VARIANT]",
      help: "Load this platform's image from a multi-platform archive",
    },
  },
});

/** The `--format` of save, checked. */
function archiveFormat(def: CommandDef, value: string | undefined): ArchiveFormat {
  const f = value ?? "docker-archive";
  if (f === "docker-archive" || f === "oci-archive") return f;
  throw new UsageError(
    def,
    `unsupported archive format "${f}": use docker-archive or oci-archive`,
  );
}

/** Stdout as a stream that is never closed (other output may follow). */
function stdoutStream(): WritableStream<Uint8Array> {
  return new WritableStream({
    async write(chunk) {
      let off = 0;
      while (off < chunk.length) off += await Deno.stdout.write(chunk.subarray(off));
    },
  });
}

/** Runs `trun save` (`name`, or `image save`, names it in help and errors). */
export async function saveCommand(argv: string[], name = SAVE.name): Promise<number> {
  const def = { ...SAVE, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const format = archiveFormat(def, p.flags.format);
  const output = p.flags.output;
  if (output === undefined && Deno.stdout.isTerminal()) {
    throw new Error(
      "Refusing to write an image archive to a terminal: use -o FILE or redirect stdout",
    );
  }
  if (output !== undefined) {
    const dir = output.includes("/") ? output.slice(0, output.lastIndexOf("/")) || "/" : ".";
    let isDir = false;
    try {
      isDir = Deno.statSync(dir).isDirectory;
    } catch {
      // Reported below.
    }
    if (!isDir) {
      throw new Error(`Cannot save to "${output}": directory "${dir}" does not exist`);
    }
  }
  const store = openStore();
  try {
    await saveImages(store, p.args, output ?? stdoutStream(), format);
  } finally {
    store.close();
  }
  return 0;
}

/** Runs `trun load` (`name`, or `image load`, names it in help and errors). */
export async function loadCommand(argv: string[], name = LOAD.name): Promise<number> {
  const def = { ...LOAD, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const input = p.flags.input;
  if (input === undefined && Deno.stdin.isTerminal()) {
    throw new Error(
      "Nothing to load: stdin is a terminal; use -i FILE or pipe an archive in",
    );
  }
  if (input !== undefined) {
    try {
      Deno.statSync(input);
    } catch (e) {
      throw new Error(`Cannot read archive "${input}": ${(e as Error).message}`);
    }
  }
  const platformSpec = p.flags.platform;
  let platform;
  if (platformSpec !== undefined) {
    try {
      platform = parsePlatform(platformSpec);
    } catch (e) {
      throw new UsageError(def, (e as Error).message);
    }
  }
  const store = openStore();
  try {
    const loaded = await loadArchive(store, input ?? Deno.stdin.readable, {
      ...ownershipMode(),
      ...(platform !== undefined ? { platform } : {}),
    });
    for (const image of loaded) {
      if (image.references.length === 0) println(`Loaded image ID: ${image.id}`);
      for (const r of image.references) println(`Loaded image: ${familiar(r)}`);
    }
  } finally {
    store.close();
  }
  return 0;
}
