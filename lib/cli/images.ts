/**
 * The commands that show and change what the image store holds, with
 * Docker's flags and output: `images` / `image ls` (the table, `--digests`,
 * `--format json`, `-q`, filters), `rmi` / `image rm` (`Untagged:` and
 * `Deleted:` lines), `tag`, `history`, `image inspect` / `inspect` (Docker's
 * JSON shape, GraphDriver pointing at the unpacked layers) and `image
 * prune` (dangling images, or with `-a` every image no container uses).
 *
 * The store does the work (lib/store/mod.ts); this module chooses what to
 * ask it and renders the answers. References are shown in Docker's
 * familiar form (`busybox:latest`, `localhost:5000/x:1`).
 */
import { boolFlag, type CommandDef, listFlag, parseArgs, stringFlag, UsageError } from "./args.ts";
import { printError, printHelp, println } from "./output.ts";
import {
  compileTemplate,
  ellipsis,
  goJson,
  goTimeString,
  humanSize,
  type OutputFormat,
  parseFormat,
  parseTime,
  renderItems,
  shortId,
  TemplateError,
  timeAgo,
} from "./format.ts";
import { parseReference } from "../image/reference.ts";
import { parseManifest } from "../image/manifest.ts";
import { ImageError, type ImageRecord, openStore, type Store } from "../store/mod.ts";

// ---------------------------------------------------------------------------
// Shared helpers

/** `--format` parsed, with template mistakes as usage errors of `def`. */
function formatFlag(def: CommandDef, value: string | undefined): OutputFormat {
  try {
    return parseFormat(value);
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(def, e.message);
    throw e;
  }
}

/** A fully qualified reference in Docker's short form; unparsable ones as stored. */
function familiar(reference: string): string {
  try {
    return parseReference(reference).familiar;
  } catch {
    return reference;
  }
}

/** The message of an error, for the per-argument errors some commands print and go on after. */
function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------
// images / image ls

/** The grammar of `trun images` (and, named `image ls`, of `trun image ls`). */
export function imagesDef(name = "images"): CommandDef {
  return {
    name,
    usage: "[OPTIONS] [REPOSITORY[:TAG]]",
    summary: "List images",
    interspersed: true,
    maxArgs: 1,
    flags: [
      {
        long: "all",
        short: "a",
        kind: "bool",
        help: "Show all images (trun keeps no intermediate ones)",
      },
      { long: "digests", kind: "bool", help: "Show digests" },
      {
        long: "filter",
        short: "f",
        kind: "list",
        value: "FILTER",
        help: "Filter output: dangling=true|false, reference=PATTERN, label=KEY[=VALUE]",
      },
      {
        long: "format",
        kind: "string",
        value: "FORMAT",
        help: "Format output: table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'",
      },
      { long: "no-trunc", kind: "bool", help: "Don't truncate output" },
      { long: "quiet", short: "q", kind: "bool", help: "Only show image IDs" },
    ],
  };
}

/** One row of `trun images`: an image under one repository, tag and digest. */
export interface ImageRow {
  /** The image. */
  image: ImageRecord;
  /** Familiar repository name, or `<none>`. */
  repository: string;
  /** Tag, or `<none>`. */
  tag: string;
  /** Digest shown with --digests, `<none>`, or "" for a digest-only row without --digests. */
  digest: string;
}

/** What the `images` filters select. */
export interface ImageFilters {
  /** Patterns a reference must match (Docker's `reference=`), any of them. */
  references: string[];
  /** `dangling=true` / `dangling=false`. */
  dangling?: boolean;
  /** `label=KEY` or `label=KEY=VALUE`, all of them. */
  labels: { key: string; value?: string }[];
}

/** Parses `--filter` values (and the REPOSITORY[:TAG] argument) into {@link ImageFilters}. */
export function parseImageFilters(
  def: CommandDef,
  filters: readonly string[],
  repository?: string,
): ImageFilters {
  const out: ImageFilters = { references: [], labels: [] };
  if (repository !== undefined) out.references.push(repository);
  for (const f of filters) {
    const eq = f.indexOf("=");
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? "" : f.slice(eq + 1);
    if (key === "dangling") {
      if (!["true", "false", "1", "0"].includes(value.toLowerCase())) {
        throw new UsageError(def, `invalid filter "${f}": dangling takes true or false`);
      }
      out.dangling = value === "true" || value === "1";
    } else if (key === "reference") {
      out.references.push(value);
    } else if (key === "label") {
      const at = value.indexOf("=");
      out.labels.push(
        at < 0 ? { key: value } : { key: value.slice(0, at), value: value.slice(at + 1) },
      );
    } else {
      throw new UsageError(
        def,
        `invalid filter "${f}": trun supports dangling=, reference= and label=`,
      );
    }
  }
  return out;
}

/** Go's `path.Match` as a RegExp: `*` and `?` stop at `/`, `[...]` classes (`^` negates). */
function globRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
        re += `[${body.startsWith("^") ? `^/${body.slice(1)}` : body}]`;
        i = end;
      }
    } else if (c === "\\" && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether a stored reference matches a `reference=` pattern, as Docker's
 * `FamiliarMatch`: the pattern against the familiar `name:tag` (or
 * `name@digest`) and against the familiar name alone. A pattern without
 * wildcards that parses as a reference also matches its normalised form
 * (`docker.io/library/busybox` finds `busybox`).
 */
export function referenceMatches(pattern: string, stored: string): boolean {
  let ref;
  try {
    ref = parseReference(stored);
  } catch {
    return false;
  }
  const re = globRegExp(pattern);
  if (re.test(ref.familiar) || re.test(ref.familiarName)) return true;
  if (/[*?[]/.test(pattern)) return false;
  try {
    const want = parseReference(pattern);
    if (want.name !== ref.name) return false;
    const explicitTag = !pattern.includes("@") &&
      pattern.lastIndexOf(":") > pattern.lastIndexOf("/");
    if (explicitTag) return ref.tag === want.tag && ref.digest === undefined;
    if (want.digest !== undefined) return ref.digest === want.digest;
    return true;
  } catch {
    return false;
  }
}

/**
 * The rows `trun images` shows for images, in Docker's way
 * (`imageFormatTaggedAndDigest`): a row per tag (per tag and digest with
 * `digests`), a `<none>` tag row per repository known only by digest, a
 * `<none> <none>` row for an untagged image. Images newest first.
 */
export function imageRows(
  images: readonly ImageRecord[],
  opts: { digests: boolean; filters: ImageFilters },
): ImageRow[] {
  const { filters } = opts;
  const sorted = [...images].sort((a, b) =>
    (parseTime(b.created) ?? 0) - (parseTime(a.created) ?? 0)
  );
  const rows: ImageRow[] = [];
  for (const image of sorted) {
    const labels = image.config.config?.Labels ?? {};
    if (
      !filters.labels.every((l) =>
        Object.hasOwn(labels, l.key) && (l.value === undefined || labels[l.key] === l.value)
      )
    ) continue;
    const keep = (r: string) =>
      filters.references.length === 0 || filters.references.some((p) => referenceMatches(p, r));
    const tags = image.tags.filter(keep);
    const digests = image.digests.filter(keep);
    const dangling = image.tags.length === 0 && image.digests.length === 0;
    if (filters.dangling === true && image.tags.length > 0) continue;
    if (filters.dangling === false && dangling) continue;
    if (tags.length === 0 && digests.length === 0) {
      if (!dangling || filters.references.length > 0) continue;
      rows.push({ image, repository: "<none>", tag: "<none>", digest: "<none>" });
      continue;
    }
    const repoTags = new Map<string, string[]>();
    for (const t of tags) {
      const ref = parseReference(t);
      const list = repoTags.get(ref.familiarName) ?? [];
      list.push(ref.tag ?? "latest");
      repoTags.set(ref.familiarName, list);
    }
    const repoDigests = new Map<string, string[]>();
    for (const d of digests) {
      const ref = parseReference(d);
      if (ref.digest === undefined) continue;
      const list = repoDigests.get(ref.familiarName) ?? [];
      list.push(ref.digest);
      repoDigests.set(ref.familiarName, list);
    }
    for (const [repository, repoTagList] of repoTags) {
      const ds = opts.digests ? repoDigests.get(repository) ?? [] : [];
      repoDigests.delete(repository);
      for (const tag of repoTagList) {
        if (ds.length === 0) rows.push({ image, repository, tag, digest: "<none>" });
        for (const digest of ds) rows.push({ image, repository, tag, digest });
      }
    }
    for (const [repository, ds] of repoDigests) {
      if (opts.digests) {
        for (const digest of ds) rows.push({ image, repository, tag: "<none>", digest });
      } else rows.push({ image, repository, tag: "<none>", digest: "" });
    }
  }
  return rows;
}

/** One line of `docker images --format json`, keys as Docker writes them (sorted). */
export function imageJson(
  row: ImageRow,
  opts: { noTrunc: boolean; now?: number },
): Record<string, unknown> {
  const created = row.image.created ?? row.image.config.created;
  return {
    Containers: "N/A",
    CreatedAt: goTimeString(created),
    CreatedSince: timeAgo(created, opts.now),
    Digest: row.digest === "" ? "<none>" : row.digest,
    ID: opts.noTrunc ? row.image.id : shortId(row.image.id),
    Repository: row.repository,
    SharedSize: "N/A",
    Size: humanSize(row.image.size, 3),
    Tag: row.tag,
    UniqueSize: "N/A",
    VirtualSize: humanSize(row.image.size),
  };
}

const IMAGE_LABELS: Record<string, string> = {
  Repository: "REPOSITORY",
  Tag: "TAG",
  Digest: "DIGEST",
  ID: "IMAGE ID",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  Size: "SIZE",
  VirtualSize: "VIRTUAL SIZE",
  SharedSize: "SHARED SIZE",
  UniqueSize: "UNIQUE SIZE",
  Containers: "CONTAINERS",
};

/** The lines `trun images` prints for `images` with the given flags. */
export function renderImages(
  images: readonly ImageRecord[],
  opts: {
    digests: boolean;
    noTrunc: boolean;
    quiet: boolean;
    format: OutputFormat;
    filters: ImageFilters;
    now?: number;
  },
): string[] {
  const rows = imageRows(images, { digests: opts.digests, filters: opts.filters });
  const id = (i: ImageRecord) => opts.noTrunc ? i.id : shortId(i.id);
  if (opts.quiet) return [...new Set(rows.map((r) => id(r.image)))];
  const json = (r: ImageRow) =>
    imageJson(r, { noTrunc: opts.noTrunc, now: opts.now ?? Date.now() });
  return renderItems(opts.format, rows, {
    headers: opts.digests
      ? ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
      : ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
    row: (r) => {
      const j = json(r);
      const cells = [
        r.repository,
        r.tag,
        j.ID as string,
        j.CreatedSince as string,
        j.Size as string,
      ];
      if (opts.digests) cells.splice(2, 0, r.digest === "" ? "<none>" : r.digest);
      return cells;
    },
    json,
    labels: IMAGE_LABELS,
  });
}

/** Runs `trun images` (`def` names the command in messages). */
export function imagesCommand(argv: string[], def: CommandDef = imagesDef()): Promise<number> {
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const format = formatFlag(def, stringFlag(p, "format"));
  const filters = parseImageFilters(def, listFlag(p, "filter"), p.args[0]);
  const store = openStore();
  try {
    const lines = renderImages(store.listImages(), {
      digests: boolFlag(p, "digests"),
      noTrunc: boolFlag(p, "no-trunc"),
      quiet: boolFlag(p, "quiet"),
      format,
      filters,
    });
    for (const line of lines) println(line);
    return Promise.resolve(0);
  } finally {
    store.close();
  }
}

// ---------------------------------------------------------------------------
// rmi / image rm

/** The grammar of `trun rmi` (and, named `image rm`, of `trun image rm`). */
export function rmiDef(name = "rmi"): CommandDef {
  return {
    name,
    usage: "[OPTIONS] IMAGE [IMAGE...]",
    summary: "Remove one or more images",
    interspersed: true,
    minArgs: 1,
    flags: [
      {
        long: "force",
        short: "f",
        kind: "bool",
        help: "Remove an image with several tags; untag one a container uses",
      },
    ],
  };
}

/**
 * Runs `trun rmi`: each image in turn, `Untagged:` and `Deleted:` lines as
 * Docker prints them. A failure is reported and the others still go; the
 * status is 125 if any failed.
 */
export function rmiCommand(argv: string[], def: CommandDef = rmiDef()): Promise<number> {
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const force = boolFlag(p, "force");
  const store = openStore();
  let failed = false;
  try {
    for (const query of p.args) {
      try {
        const result = store.removeImage(query, { force });
        for (const r of result.untagged) println(`Untagged: ${familiar(r)}`);
        for (const d of result.deleted) println(`Deleted: ${d}`);
      } catch (e) {
        failed = true;
        printError(messageOf(e));
      }
    }
  } finally {
    store.close();
  }
  return Promise.resolve(failed ? 125 : 0);
}

// ---------------------------------------------------------------------------
// tag

/** The grammar of `trun tag` (and, named `image tag`, of `trun image tag`). */
export function tagDef(name = "tag"): CommandDef {
  return {
    name,
    usage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    interspersed: true,
    minArgs: 2,
    maxArgs: 2,
    flags: [],
  };
}

/** Runs `trun tag SOURCE TARGET`; prints nothing on success, as Docker. */
export function tagCommand(argv: string[], def: CommandDef = tagDef()): Promise<number> {
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const [source, target] = p.args as [string, string];
  // A bad target is reported before the source is looked up, naming it.
  parseReference(target);
  const store = openStore();
  try {
    store.tagImage(source, target);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}

// ---------------------------------------------------------------------------
// history

/** The grammar of `trun history` (and, named `image history`, of `trun image history`). */
export function historyDef(name = "history"): CommandDef {
  return {
    name,
    usage: "[OPTIONS] IMAGE",
    summary: "Show the history of an image",
    interspersed: true,
    minArgs: 1,
    maxArgs: 1,
    flags: [
      {
        long: "format",
        kind: "string",
        value: "FORMAT",
        help: "Format output: table, json, or a Go template such as '{{.CreatedBy}}'",
      },
      {
        long: "human",
        short: "H",
        kind: "bool",
        help: "Print sizes and dates in human readable format (default true; --human=false)",
      },
      { long: "no-trunc", kind: "bool", help: "Don't truncate output" },
      { long: "quiet", short: "q", kind: "bool", help: "Only show image IDs" },
    ],
  };
}

/** One history entry, newest first, as Docker's `HistoryResponseItem`. */
export interface HistoryEntry {
  /** The image id for the newest entry, `<missing>` for the rest. */
  id: string;
  /** RFC 3339 creation time, if known. */
  created: string | undefined;
  /** The command that made the step. */
  createdBy: string;
  /** Bytes the step added (0 for an empty layer). */
  size: number;
  /** The step's comment. */
  comment: string;
}

/**
 * The history of an image from its config's `history` (newest first), each
 * non-empty step given the next layer's size. A config without history
 * gets one `<missing>` step per layer, so the table is never empty.
 */
export function historyEntries(image: ImageRecord, sizes: readonly number[]): HistoryEntry[] {
  const steps = image.config.history ?? [];
  const out: HistoryEntry[] = [];
  let layer = 0;
  if (steps.length === 0) {
    for (const size of sizes) {
      out.push({ id: "<missing>", created: undefined, createdBy: "", size, comment: "" });
    }
  } else {
    for (const h of steps) {
      const size = h.empty_layer ? 0 : sizes[layer++] ?? 0;
      out.push({
        id: "<missing>",
        created: h.created,
        createdBy: h.created_by ?? "",
        size,
        comment: h.comment ?? "",
      });
    }
  }
  out.reverse();
  if (out[0] !== undefined) out[0].id = image.id;
  return out;
}

/** The lines `trun history` prints. */
export function renderHistory(
  entries: readonly HistoryEntry[],
  opts: { noTrunc: boolean; quiet: boolean; human: boolean; format: OutputFormat; now?: number },
): string[] {
  const id = (e: HistoryEntry) => e.id === "<missing>" || opts.noTrunc ? e.id : shortId(e.id);
  if (opts.quiet) return entries.map(id);
  const now = opts.now ?? Date.now();
  const json = (e: HistoryEntry): Record<string, unknown> => {
    const t = parseTime(e.created);
    const createdBy = e.createdBy.replaceAll("\t", " ");
    return {
      Comment: e.comment,
      CreatedAt: t === undefined ? "" : new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z"),
      CreatedBy: opts.noTrunc ? createdBy : ellipsis(createdBy, 45),
      CreatedSince: opts.human
        ? timeAgo(e.created, now)
        : (t === undefined ? "N/A" : new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z")),
      ID: id(e),
      Size: opts.human ? humanSize(e.size, 3) : String(e.size),
    };
  };
  return renderItems(opts.format, entries, {
    headers: ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
    row: (e) => {
      const j = json(e);
      return [j.ID, j.CreatedSince, j.CreatedBy, j.Size, j.Comment] as string[];
    },
    json,
    labels: {
      ID: "IMAGE",
      CreatedSince: "CREATED",
      CreatedAt: "CREATED AT",
      CreatedBy: "CREATED BY",
      Size: "SIZE",
      Comment: "COMMENT",
    },
  });
}

/** Runs `trun history IMAGE`. */
export function historyCommand(argv: string[], def: CommandDef = historyDef()): Promise<number> {
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const format = formatFlag(def, stringFlag(p, "format"));
  const query = p.args[0]!;
  const store = openStore();
  try {
    const image = store.findImage(query);
    if (image === undefined) throw new ImageError("not-found", `No such image: "${query}"`);
    const lines = renderHistory(historyEntries(image, store.layerSizes(image.id)), {
      noTrunc: boolFlag(p, "no-trunc"),
      quiet: boolFlag(p, "quiet"),
      // A bool flag defaults to true here: only --human=false turns it off.
      human: p.flags["human"] !== false,
      format,
    });
    for (const line of lines) println(line);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}

// ---------------------------------------------------------------------------
// image inspect / inspect

/** The grammar of `trun image inspect` (`image inspect`) or `trun inspect` (`inspect`). */
export function inspectDef(name = "image inspect"): CommandDef {
  const flags: CommandDef["flags"] = [
    {
      long: "format",
      short: "f",
      kind: "string",
      value: "FORMAT",
      help: "Format output: json (default), or a Go template such as '{{.Id}}'",
    },
  ];
  if (name === "inspect") {
    flags.push({
      long: "type",
      kind: "string",
      value: "TYPE",
      help: "Only inspect objects of this type (trun inspects images only: image)",
    });
  }
  return {
    name,
    usage: name === "inspect" ? "[OPTIONS] NAME|ID [NAME|ID...]" : "[OPTIONS] IMAGE [IMAGE...]",
    summary: name === "inspect"
      ? "Return low-level information on images"
      : "Display detailed information on one or more images",
    interspersed: true,
    minArgs: 1,
    flags,
  };
}

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
export function inspectCommand(argv: string[], def: CommandDef = inspectDef()): Promise<number> {
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const type = stringFlag(p, "type");
  if (type !== undefined && type !== "image") {
    throw new UsageError(def, `unsupported --type "${type}": trun inspects images only`);
  }
  const format = stringFlag(p, "format");
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
    for (const query of p.args) {
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

// ---------------------------------------------------------------------------
// image prune

/** The grammar of `trun image prune`. */
export function pruneDef(name = "image prune"): CommandDef {
  return {
    name,
    usage: "[OPTIONS]",
    summary: "Remove unused images",
    interspersed: true,
    maxArgs: 0,
    flags: [
      {
        long: "all",
        short: "a",
        kind: "bool",
        help: "Remove all images no container uses, not just dangling ones",
      },
      { long: "force", short: "f", kind: "bool", help: "Do not prompt for confirmation" },
    ],
  };
}

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
  for (const image of store.listImages()) {
    const dangling = image.tags.length === 0 && image.digests.length === 0;
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

/** Runs `trun image prune`. */
export async function pruneCommand(argv: string[], def: CommandDef = pruneDef()): Promise<number> {
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const all = boolFlag(p, "all");
  if (!boolFlag(p, "force")) {
    if (!Deno.stdin.isTerminal()) {
      throw new UsageError(
        def,
        `"trun ${def.name}" asks for confirmation and stdin is not a terminal: use --force (-f) to prune without asking`,
      );
    }
    Deno.stdout.writeSync(
      new TextEncoder().encode(
        `WARNING! This will remove all ${
          all ? "images without at least one container associated to them" : "dangling images"
        }.\nAre you sure you want to continue? [y/N] `,
      ),
    );
    const answer = (await readLine())?.trim().toLowerCase();
    if (answer !== "y" && answer !== "yes") return 0;
  }
  const store = openStore();
  try {
    const report = pruneImages(store, all);
    if (report.lines.length > 0) {
      println("Deleted Images:");
      for (const l of report.lines) println(l);
      println();
    }
    println(`Total reclaimed space: ${humanSize(report.reclaimed)}`);
  } finally {
    store.close();
  }
  return 0;
}
