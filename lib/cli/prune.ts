/**
 * `trun image prune`: remove dangling images, or with `-a` every image no
 * container uses, then the layers and blobs nothing needs any more.
 * Rootless with subordinate ids, main.ts runs it inside the user namespace
 * helper, so layers owned by image ids can be deleted.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import { humanSize } from "./format.ts";
import { familiar, intermediateImages } from "./_image_common.ts";
import { parseManifest } from "../oci/manifest.ts";
import { openStore, type Store } from "../store/mod.ts";

/** The grammar of `trun image prune`. */
export const PRUNE = defineCommand({
  name: "image prune",
  usage: "[OPTIONS]",
  summary: "Remove unused images",
  maxArgs: 0,
  flags: {
    all: {
      short: "a",
      kind: "bool",
      help: "Remove all images no container uses, not just dangling ones",
    },
    force: { short: "f", kind: "bool", help: "Do not prompt for confirmation" },
  },
});

/** Reads one line from stdin (the answer to a prompt); null at end of input. */
async function readLine(): Promise<string | null> {
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  while (true) {
    const n = await Deno.stdin.read(buf);
    if (n === null) {
      return bytes.length > 0 ? new TextDecoder().decode(new Uint8Array(bytes)) : null;
    }
    if (buf[0] === 0x0a) return new TextDecoder().decode(new Uint8Array(bytes));
    bytes.push(buf[0]!);
  }
}

/**
 * Docker's prompt before a prune: prints `warning` and asks; true when the
 * answer is y or yes. Refused (a usage error naming --force) when stdin is
 * not a terminal, so a script never hangs on it.
 */
export async function confirmPrune(def: CommandDef, warning: string): Promise<boolean> {
  if (!Deno.stdin.isTerminal()) {
    throw new UsageError(
      def,
      `"trun ${def.name}" asks for confirmation and stdin is not a terminal: use --force (-f) to prune without asking`,
    );
  }
  Deno.stdout.writeSync(
    new TextEncoder().encode(`${warning}\nAre you sure you want to continue? [y/N] `),
  );
  const answer = (await readLine())?.trim().toLowerCase();
  return answer === "y" || answer === "yes";
}

/** What pruneImages() removed. */
export interface PruneReport {
  /** `untagged: …` and `deleted: …` lines, in order. */
  lines: string[];
  /** Bytes freed: unpacked layers and stored blobs. */
  reclaimed: number;
}

/**
 * Removes dangling images (no tag and no digest reference), or with `all`
 * every image no container uses, then collects layers and blobs nothing
 * needs any more (leftovers of interrupted pulls too).
 */
export function pruneImages(store: Store, all: boolean): PruneReport {
  const lines: string[] = [];
  let reclaimed = 0;
  // Intermediate build images stay unless -a, as Docker keeps images with children.
  const images = store.listImages();
  const intermediate = all
    ? new Set<string>()
    : intermediateImages(images, store.buildCacheImages());
  for (const image of images) {
    const dangling = image.tags.length === 0 && image.digests.length === 0 &&
      !intermediate.has(image.id);
    if (!all && !dangling) continue;
    // A running container keeps its image; a record left by a killed trun does not.
    if (store.liveContainers(image.id).length > 0) continue;
    const layerBytes = store.layerSizes(image.id);
    const sizes = new Map(image.layers.map((chain, i) => [chain, layerBytes[i] ?? 0]));
    let blobs: { digest: string; size: number }[] = [];
    try {
      const stored = store.manifest(image.id);
      const m = parseManifest(stored.bytes, stored.mediaType, image.id);
      if (m.kind === "manifest") blobs = [m.manifest.config, ...m.manifest.layers];
    } catch {
      // Without its manifest the image's blobs cannot be counted; it still goes.
    }
    // By id with force: every reference goes at once (no container uses it).
    const result = store.removeImage(image.id, { force: true });
    for (const r of result.untagged) lines.push(`untagged: ${familiar(r)}`);
    for (const d of result.deleted) {
      lines.push(`deleted: ${d}`);
      reclaimed += sizes.get(d) ?? 0;
    }
    for (const b of new Map(blobs.map((b) => [b.digest, b.size]))) {
      if (!store.hasBlob(b[0])) reclaimed += b[1];
    }
  }
  reclaimed += store.prune().bytes;
  return { lines, reclaimed };
}

/** Prints what an image prune removed, as Docker does (nothing when nothing). */
export function printImagePrune(report: PruneReport): void {
  if (report.lines.length > 0) println(["Deleted Images:", ...report.lines, ""].join("\n"));
}

/** Runs `trun image prune`. */
export async function main(argv: string[], name = PRUNE.name): Promise<number> {
  const def = { ...PRUNE, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const all = p.flags.all;
  const warning = `WARNING! This will remove all ${
    all ? "images without at least one container associated to them" : "dangling images"
  }.`;
  if (!p.flags.force && !await confirmPrune(def, warning)) return 0;
  const store = openStore();
  try {
    const report = pruneImages(store, all);
    printImagePrune(report);
    println(`Total reclaimed space: ${humanSize(report.reclaimed)}`);
  } finally {
    store.close();
  }
  return 0;
}
