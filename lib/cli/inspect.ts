/**
 * `trun inspect`, `trun image inspect`, `trun container inspect` and `trun
 * volume inspect`: Docker's JSON shape of stored images (GraphDriver
 * pointing at the unpacked layers), of recorded containers
 * (container_inspect.ts) and of volumes, or a
 * Go template line per object with `--format`. `trun inspect` looks for a
 * container first, then an image, then a volume, as Docker does; `--type`
 * picks one.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printError, printHelp, println } from "./output.ts";
import { compileTemplate, goJson, TemplateError } from "./format.ts";
import { familiar, messageOf } from "./_image_common.ts";
import { containerFacts, inspectContainer } from "./container_inspect.ts";
import { containerStatus } from "../container/status.ts";
import { inspectNetwork } from "./network.ts";
import { findNetwork, listLeases } from "../store/networks.ts";
import {
  type ContainerRecord,
  type ImageRecord,
  openStore,
  type Store,
  type VolumeRecord,
} from "../store/mod.ts";

const FORMAT_FLAG = {
  short: "f",
  kind: "string",
  value: "FORMAT",
  help: "Format output: json (default), or a Go template such as '{{.Id}}'",
} as const;

/** The grammar of `trun image inspect`. */
export const IMAGE_INSPECT = defineCommand({
  name: "image inspect",
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  summary: "Display detailed information on one or more images",
  minArgs: 1,
  flags: { format: FORMAT_FLAG },
});

const SIZE_FLAG = {
  short: "s",
  kind: "bool",
  help: "Display total file sizes (containers: SizeRw and SizeRootFs)",
} as const;

/** The grammar of `trun inspect`: Docker's inspect of any object, here containers and images. */
export const INSPECT = defineCommand({
  name: "inspect",
  usage: "[OPTIONS] NAME|ID [NAME|ID...]",
  summary: "Return low-level information on containers and images",
  minArgs: 1,
  flags: {
    format: FORMAT_FLAG,
    size: SIZE_FLAG,
    type: {
      kind: "string",
      value: "TYPE",
      help: "Only inspect objects of this type: container, image or volume",
    },
  },
});

/** The grammar of `trun container inspect`. */
export const CONTAINER_INSPECT = defineCommand({
  name: "container inspect",
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Display detailed information on one or more containers",
  minArgs: 1,
  flags: { format: FORMAT_FLAG, size: SIZE_FLAG },
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
 * Runs `trun inspect`: each name or id as a container, else as an image
 * (only the one `--type` names, when given). Prints the JSON array of the
 * objects found (a template line each with `--format`), then fails with
 * status 1 naming those not found, as Docker (`No such object: X`).
 */
export function inspectCommand(argv: string[], name = INSPECT.name): Promise<number> {
  const def = { ...INSPECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const type = p.flags.type;
  if (type !== undefined && type !== "container" && type !== "image" && type !== "volume") {
    throw new UsageError(
      def,
      `unsupported --type "${type}": trun inspects container, image or volume`,
    );
  }
  const kinds: ObjectKind[] = type === undefined ? ["container", "image", "volume"] : [type];
  return inspectObjects(def, p.args, p.flags.format, kinds, p.flags.size);
}

/** The grammar of `trun volume inspect`. */
/** The grammar of `volume inspect`. */
export const VOLUME_INSPECT = defineCommand({
  name: "volume inspect",
  usage: "[OPTIONS] VOLUME [VOLUME...]",
  summary: "Display detailed information on one or more volumes",
  minArgs: 1,
  flags: { format: FORMAT_FLAG },
});

/** Docker's `docker volume inspect` object of a volume whose data is at `mountpoint`. */
export function inspectVolume(v: VolumeRecord, mountpoint: string): Record<string, unknown> {
  const orNull = (o: Record<string, string>) => Object.keys(o).length > 0 ? o : null;
  return {
    CreatedAt: v.created,
    Driver: v.driver,
    Labels: orNull(v.labels),
    Mountpoint: mountpoint,
    Name: v.name,
    Options: orNull(v.options),
    Scope: "local",
  };
}

/** Runs `trun volume inspect` (`name` names it in help and errors): volumes only. */
export function volumeInspectCommand(argv: string[], name = VOLUME_INSPECT.name): Promise<number> {
  const def = { ...VOLUME_INSPECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  return inspectObjects(def, p.args, p.flags.format, ["volume"], false);
}

/** The grammar of `trun network inspect`. */
export const NETWORK_INSPECT = defineCommand({
  name: "network inspect",
  usage: "[OPTIONS] NETWORK [NETWORK...]",
  summary: "Display detailed information on one or more networks",
  minArgs: 1,
  flags: { format: FORMAT_FLAG },
});

/** Runs `trun network inspect` (`name` names it in help and errors): networks only. */
export function networkInspectCommand(
  argv: string[],
  name = NETWORK_INSPECT.name,
): Promise<number> {
  const def = { ...NETWORK_INSPECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  return inspectObjects(def, p.args, p.flags.format, ["network"], false);
}

/** Runs `trun container inspect` (`name` names it in help and errors): containers only. */
export function containerInspectCommand(
  argv: string[],
  name = CONTAINER_INSPECT.name,
): Promise<number> {
  const def = { ...CONTAINER_INSPECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  return inspectObjects(def, p.args, p.flags.format, ["container"], p.flags.size);
}

/** What `trun inspect` can look for. */
type ObjectKind = "container" | "image" | "volume" | "network";

/** What one lookup of one kind found: the object, nothing, or an error (an ambiguous prefix). */
type Lookup = { found: Record<string, unknown> } | { missing: string } | undefined;

/** Looks `query` up as a container (with `size`: its sizes). */
function lookupContainer(store: Store, query: string, size: boolean): Lookup {
  let rec: ContainerRecord | undefined;
  try {
    rec = store.findRecord(query);
  } catch (e) {
    return { missing: messageOf(e) };
  }
  if (rec === undefined) return undefined;
  return {
    found: inspectContainer(rec, containerStatus(rec), containerFacts(store, rec, { size })),
  };
}

/** Looks `query` up as a volume (by its exact name). */
function lookupVolume(store: Store, query: string): Lookup {
  const v = store.getVolume(query);
  return v === undefined ? undefined : { found: inspectVolume(v, store.volumePath(v.name)) };
}

/** Looks `query` up as a network (name, id or id prefix). */
function lookupNetwork(store: Store, query: string): Lookup {
  let n;
  try {
    n = findNetwork(store, query);
  } catch (e) {
    return { missing: messageOf(e) };
  }
  if (n === undefined) return undefined;
  const names = new Map(store.listRecords().map((r) => [r.id, r.name]));
  return { found: inspectNetwork(n, listLeases(store, n.name), names) };
}

/** Looks `query` up as an image. */
function lookupImage(store: Store, query: string): Lookup {
  let image: ImageRecord | undefined;
  try {
    image = store.findImage(query);
  } catch (e) {
    return { missing: messageOf(e) };
  }
  if (image === undefined) return undefined;
  return { found: inspectImage(image, store.layerPaths(image.id)) };
}

/**
 * Prints the objects of `kinds` that `queries` name, tried in that order,
 * then throws (status 1) naming each query none of them found.
 */
function inspectObjects(
  def: CommandDef,
  queries: readonly string[],
  format: string | undefined,
  kinds: readonly ObjectKind[],
  size: boolean,
): Promise<number> {
  const render = templateOf(def, format);
  const { found, missing } = findObjects(queries, kinds, size);
  printObjects(render, found);
  if (missing.length > 0) throw Object.assign(new Error(missing.join("\n")), { exitCode: 1 });
  return Promise.resolve(0);
}

/**
 * Looks each query up as each of `kinds` in turn. A query none of them found
 * gets `No such container: X`, `No such image: "X"`, or `No such object: X`
 * for several kinds; a lookup's own error (an ambiguous id prefix) when it
 * had one.
 */
function findObjects(
  queries: readonly string[],
  kinds: readonly ObjectKind[],
  size: boolean,
): { found: Record<string, unknown>[]; missing: string[] } {
  const store = openStore();
  const found: Record<string, unknown>[] = [];
  const missing: string[] = [];
  try {
    for (const query of queries) {
      let error: string | undefined;
      let hit: Record<string, unknown> | undefined;
      for (const kind of kinds) {
        const r = kind === "container"
          ? lookupContainer(store, query, size)
          : kind === "volume"
          ? lookupVolume(store, query)
          : kind === "network"
          ? lookupNetwork(store, query)
          : lookupImage(store, query);
        if (r === undefined) continue;
        if ("found" in r) {
          hit = r.found;
          break;
        }
        error ??= r.missing;
      }
      if (hit !== undefined) found.push(hit);
      else if (error !== undefined) missing.push(error);
      else if (kinds.length > 1) missing.push(`No such object: ${query}`);
      else if (kinds[0] === "container") missing.push(`No such container: ${query}`);
      else if (kinds[0] === "volume") missing.push(`No such volume: ${query}`);
      else if (kinds[0] === "network") missing.push(`network ${query} not found`);
      else missing.push(`No such image: "${query}"`);
    }
  } finally {
    store.close();
  }
  return { found, missing };
}

/** Prints `found` through the `--format` template, or as one JSON array without one. */
function printObjects(
  render: ReturnType<typeof templateOf>,
  found: Record<string, unknown>[],
): void {
  if (render === undefined) println(goJson(found, "    "));
  else for (const v of found) println(render(v));
}

/** The `--format` template, or undefined for JSON; template mistakes are usage errors. */
function templateOf(def: CommandDef, format: string | undefined) {
  if (format === undefined || format === "" || format === "json") return undefined;
  try {
    return compileTemplate(format.replaceAll("\\t", "\t").replaceAll("\\n", "\n"));
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(def, e.message);
    throw e;
  }
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
  const render = templateOf(def, format);
  const { found, missing } = findObjects(queries, ["image"], false);
  printObjects(render, found);
  for (const m of missing) printError(m);
  return Promise.resolve(missing.length > 0 ? 125 : 0);
}
