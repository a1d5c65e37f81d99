/**
 * `trun image inspect` and `trun inspect`: Docker's JSON shape of stored
 * images (GraphDriver pointing at the unpacked layers), or a Go template
 * line per image with `--format`.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printError, printHelp, println } from "./output.ts";
import { compileTemplate, goJson, TemplateError } from "./format.ts";
import { familiar, messageOf } from "./_image_common.ts";
import { type ImageRecord, openStore } from "../store/mod.ts";

const FORMAT_FLAG = {
  short: "f",
  kind: "string",
  value: "FORMAT",
  help: "Format output: json (default), or a Go template such as '{{.Id}}'",
} as const;

/** The grammar of `trun image inspect`. */
const IMAGE_INSPECT = defineCommand({
  name: "image inspect",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  summary: "Display detailed information on one or more images",
  minArgs: 1,
  flags: { format: FORMAT_FLAG },
});

/** The grammar of `trun inspect`: Docker's inspect of any object, here of images only. */
const INSPECT = defineCommand({
  name: "inspect",
  usage: "[OPTIONS] NAME|ID [NAME|ID...]",
  summary: "Return low-level information on images",
  minArgs: 1,
  flags: {
    format: FORMAT_FLAG,
    type: {
      kind: "string",
      value: "TYPE",
      help: "Only inspect objects of this type (trun inspects images only: image)",
    },
  },
});

/**
 * Docker's `docker image inspect` object for a stored image. GraphDriver
 * names the unpacked layer directories, top first, as overlay lowerdirs.
 */
export function inspectImage(
  image: ImageRecord,
  layerDirs: readonly string[],
): Record<string, unknown> {
  const c = image.config as unknown as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : "");
  const out: Record<string, unknown> = {
    Id: image.id,
    RepoTags: image.tags.map(familiar),
    RepoDigests: image.digests.map(familiar),
    Parent: "",
    Comment: str(c.comment),
    Created: str(c.created),
    DockerVersion: str(c.docker_version),
    Author: str(c.author),
    Config: image.config.config ?? {},
    Architecture: image.config.architecture,
  };
  if (image.config.variant) out.Variant = image.config.variant;
  out.Os = image.config.os;
  if (typeof c["os.version"] === "string" && c["os.version"] !== "") {
    out.OsVersion = c["os.version"];
  }
  out.Size = image.size;
  out.GraphDriver = {
    Data: { LowerDir: [...layerDirs].reverse().join(":") },
    Name: "overlay",
  };
  out.RootFS = { Type: "layers", Layers: image.config.rootfs.diff_ids };
  // trun keeps no tag times; Docker shows Go's zero time for never-tagged images.
  out.Metadata = { LastTagTime: "0001-01-01T00:00:00Z" };
  return out;
}

/**
 * Runs `trun image inspect` / `trun inspect`: the JSON array of the images
 * found (a template line each with `--format`), then an error for each one
 * not found (status 125), as Docker prints `[]` and `No such image`.
 */
export function inspectCommand(argv: string[], name = INSPECT.name): Promise<number> {
  const def = { ...INSPECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const type = p.flags.type;
  if (type !== undefined && type !== "image") {
    throw new UsageError(def, `unsupported --type "${type}": trun inspects images only`);
  }
  return inspectImages(def, p.args, p.flags.format);
}

/** Runs `trun image inspect` (`name` names it in help and errors), as {@link inspectCommand}. */
export function imageInspectCommand(argv: string[], name = IMAGE_INSPECT.name): Promise<number> {
  const def = { ...IMAGE_INSPECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  return inspectImages(def, p.args, p.flags.format);
}

/** Prints the images `queries` name, then an error for each one not found. */
function inspectImages(
  def: CommandDef,
  queries: readonly string[],
  format: string | undefined,
): Promise<number> {
  let render: ((v: unknown) => string) | undefined;
  if (format !== undefined && format !== "" && format !== "json") {
    try {
      render = compileTemplate(format.replaceAll("\\t", "\t").replaceAll("\\n", "\n"));
    } catch (e) {
      if (e instanceof TemplateError) throw new UsageError(def, e.message);
      throw e;
    }
  }
  const store = openStore();
  const found: Record<string, unknown>[] = [];
  const missing: string[] = [];
  try {
    for (const query of queries) {
      let image: ImageRecord | undefined;
      try {
        image = store.findImage(query);
      } catch (e) {
        missing.push(messageOf(e));
        continue;
      }
      if (image === undefined) missing.push(`No such image: "${query}"`);
      else found.push(inspectImage(image, store.layerPaths(image.id)));
    }
  } finally {
    store.close();
  }
  if (render === undefined) println(goJson(found, "    "));
  else for (const v of found) println(render(v));
  for (const m of missing) printError(m);
  return Promise.resolve(missing.length > 0 ? 125 : 0);
}
