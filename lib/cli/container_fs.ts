/**
 * `trun diff`, `trun cp` and `trun export`: a container's files, with
 * Docker's flags, output and exit codes (1 for what goes wrong, as the
 * docker CLI). diff reads the writable layer (lib/container/diff.ts); cp
 * and export open the container's root (lib/container/container_root.ts)
 * and move tar streams (lib/container/copy.ts).
 */
import { findContainer } from "./_container_common.ts";
import { defineCommand, parseArgs } from "./args.ts";
import { printHelp, println } from "./output.ts";

/** The grammar of `trun diff`. */
export const DIFF = defineCommand({
  name: "diff",
  usage: "CONTAINER",
  summary: "Inspect changes to files or directories on a container's filesystem",
  minArgs: 1,
  maxArgs: 1,
  flags: {},
});

/** The grammar of `trun cp`. */
export const CP = defineCommand({
  name: "cp",
  usage:
    "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\ttrun cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
  summary: "Copy files/folders between a container and the local filesystem\n\n" +
    "Use '-' as the source to read a tar archive from stdin and extract it to a directory\n" +
    "destination in a container. Use '-' as the destination to stream a tar archive of a\n" +
    "container source to stdout.",
  minArgs: 2,
  maxArgs: 2,
  flags: {
    archive: { short: "a", kind: "bool", help: "Archive mode (copy all uid/gid information)" },
    "follow-link": { short: "L", kind: "bool", help: "Always follow symbol link in SRC_PATH" },
    quiet: {
      short: "q",
      kind: "bool",
      help: "Suppress progress output during copy (always suppressed without a terminal)",
    },
  },
});

/** The grammar of `trun export`. */
export const EXPORT = defineCommand({
  name: "export",
  usage: "[OPTIONS] CONTAINER",
  summary: "Export a container's filesystem as a tar archive",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    output: {
      short: "o",
      kind: "string",
      value: "FILE",
      help: "Write to a file, instead of STDOUT",
    },
  },
});

/** An error with the docker CLI's exit status 1. */
function failure(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 1 });
}

/** `trun diff`: `A`, `C` and `D` lines for what the container changed in its image. */
export async function diffCommand(argv: string[], name = DIFF.name): Promise<number> {
  const def = { ...DIFF, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { rec, dir } = await findContainer(p.args[0]!);
  const { containerChanges } = await import("../container/diff.ts");
  const { formatChanges } = await import("../container/changes.ts");
  let lines: string[];
  try {
    lines = formatChanges(containerChanges(dir));
  } catch (e) {
    throw failure(
      `reading the changes of container ${rec.id.slice(0, 12)}: ${(e as Error).message}`,
    );
  }
  if (lines.length > 0) println(lines.join("\n"));
  return 0;
}

/** `trun cp`: between a container (running or not) and this host, or a tar on stdin/stdout. */
export async function cpCommand(argv: string[], name = CP.name): Promise<number> {
  const def = { ...CP, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { parseCopyArg } = await import("../container/copy_paths.ts");
  const src = parseCopyArg(p.args[0]!);
  const dest = parseCopyArg(p.args[1]!);
  if (src.kind === "container" && dest.kind === "container") {
    throw failure("copying between containers is not supported");
  }
  const ctr = src.kind === "container" ? src : dest.kind === "container" ? dest : undefined;
  if (ctr === undefined) throw failure("must specify at least one container source");
  const { rec, dir } = await findContainer(ctr.container);
  const { withContainerRoot } = await import("../container/container_root.ts");
  const copy = await import("../container/copy.ts");
  const flags = { archive: p.flags.archive, followLink: p.flags["follow-link"] };
  return await withContainerRoot(rec, dir, [...name.split(" "), ...argv], async (root) => {
    let bytes: number;
    let shown: string;
    if (src.kind === "container") {
      const hostDest = dest.kind === "host" ? dest.path : null;
      bytes = await copy.copyFromContainer(
        root,
        src.container,
        copy.containerPath(src.path),
        hostDest,
        flags,
      );
      shown = hostDest ?? "-";
    } else {
      const hostSrc = src.kind === "host" ? src.path : null;
      bytes = await copy.copyToContainer(
        root,
        ctr.container,
        hostSrc,
        copy.containerPath(ctr.path),
        flags,
      );
      shown = `${ctr.container}:${ctr.path}`;
    }
    // Docker's closing line, on a terminal only (never in a tar on stdout).
    if (!p.flags.quiet && shown !== "-" && Deno.stderr.isTerminal()) {
      const { humanSize } = await import("./format.ts");
      Deno.stderr.writeSync(
        new TextEncoder().encode(`Successfully copied ${humanSize(bytes)} to ${shown}\n`),
      );
    }
    return 0;
  });
}

/** `trun export`: the container's file system as a tar, to stdout or `-o FILE`. */
export async function exportCommand(argv: string[], name = EXPORT.name): Promise<number> {
  const def = { ...EXPORT, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const output = p.flags.output;
  if (output === undefined && Deno.stdout.isTerminal()) {
    throw failure("cowardly refusing to save to a terminal. Use the -o flag or redirect");
  }
  const { rec, dir } = await findContainer(p.args[0]!);
  const { withContainerRoot } = await import("../container/container_root.ts");
  const { exportRoot } = await import("../container/copy.ts");
  return await withContainerRoot(rec, dir, [...name.split(" "), ...argv], async (root) => {
    if (output === undefined) {
      await exportRoot(root, Deno.stdout);
      return 0;
    }
    // As Docker's -o: written beside FILE under a temporary name, then
    // renamed, so FILE is never half-written.
    const slash = output.lastIndexOf("/");
    const tmp = `${output.slice(0, slash + 1)}.trun_temp_${crypto.randomUUID().slice(0, 8)}`;
    const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      await exportRoot(root, file);
      file.syncSync();
      file.close();
      Deno.renameSync(tmp, output);
    } catch (e) {
      try {
        file.close();
      } catch {
        // Already closed.
      }
      Deno.removeSync(tmp);
      throw failure(`writing "${output}": ${(e as Error).message}`);
    }
    return 0;
  });
}
