/**
 * `trun images` and `trun image ls`: what the image store holds, with
 * Docker's flags and output (the table, `--digests`, `--format json`,
 * `-q`, filters on dangling, reference patterns and labels). References
 * are shown in Docker's familiar form (`busybox:latest`).
 *
 * The store does the work (lib/store/mod.ts); this module chooses what to
 * ask it and renders the answers.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import {
  goTimeString,
  humanSize,
  type OutputFormat,
  parseTime,
  renderItems,
  shortId,
  timeAgo,
} from "./format.ts";
import { formatFlag, intermediateImages } from "./_image_common.ts";
import { parseReference } from "../oci/reference.ts";
import { type ImageRecord, openStore } from "../store/mod.ts";

/** The grammar of `trun images` and `trun image ls`. */
export const IMAGES = defineCommand({
  name: "images",
  usage: "[OPTIONS] [REPOSITORY[:TAG]]",
  summary: "List images",
  maxArgs: 1,
  flags: {
    all: {
      short: "a",
      kind: "bool",
      help: "Show all images, with trun build's intermediate ones",
    },
    digests: { kind: "bool", help: "Show digests" },
    filter: {
      short: "f",
      kind: "list",
      value: "FILTER",
      help: "Filter output: dangling=true|false, reference=PATTERN, label=KEY[=VALUE]",
    },
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Format output: table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'",
    },
    "no-trunc": { kind: "bool", help: "Don't truncate output" },
    quiet: { short: "q", kind: "bool", help: "Only show image IDs" },
  },
});

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

/** Runs `trun images` (`name`, or `image ls`, names it in help and errors). */
export function main(argv: string[], name = IMAGES.name): Promise<number> {
  const def = { ...IMAGES, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const format = formatFlag(def, p.flags.format);
  const filters = parseImageFilters(def, p.flags.filter, p.args[0]);
  const store = openStore();
  try {
    // trun build's intermediate images only with -a, as Docker shows them.
    const all = store.listImages();
    const hidden = p.flags.all
      ? new Set<string>()
      : intermediateImages(all, store.buildCacheImages());
    const images = all.filter((i) => !hidden.has(i.id));
    const lines = renderImages(images, {
      digests: p.flags.digests,
      noTrunc: p.flags["no-trunc"],
      quiet: p.flags.quiet,
      format,
      filters,
    });
    for (const line of lines) println(line);
    return Promise.resolve(0);
  } finally {
    store.close();
  }
}
