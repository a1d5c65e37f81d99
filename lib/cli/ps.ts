/**
 * `trun ps` (`container ls`): the containers the store records, with
 * Docker's columns, flags and filters. The status of each is the true one
 * now (`containerStatus`), never the last state written.
 *
 * The row building is pure (records, their statuses, sizes and the current
 * time in; lines out), so tests build records by hand; `main` does the I/O:
 * the store, the status checks and, with `--size`, the walk of each
 * writable layer.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import {
  ellipsis,
  goTimeString,
  humanDuration,
  humanSize,
  type OutputFormat,
  parseTime,
  renderItems,
  shortId,
  timeAgo,
} from "./format.ts";
import { formatFlag } from "./_image_common.ts";
import { parseReference } from "../oci/reference.ts";
import { portsColumn } from "../spec/ports.ts";
import { type ContainerStatus, containerStatus } from "../container/status.ts";
import { isPaused } from "../container/pause.ts";
import { type ContainerRecord, openStore } from "../store/mod.ts";

/** The grammar of `trun ps` and `trun container ls`. */
export const PS = defineCommand({
  name: "ps",
  usage: "[OPTIONS]",
  summary: "List containers",
  maxArgs: 0,
  flags: {
    all: { short: "a", kind: "bool", help: "Show all containers (default shows just running)" },
    filter: {
      short: "f",
      kind: "list",
      value: "FILTER",
      help:
        "Filter output: status=, name=, id=, label=KEY[=VALUE], ancestor=IMAGE, exited=CODE, before=, since=",
    },
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Format output: table, json, or a Go template such as '{{.ID}}\\t{{.Names}}'",
    },
    last: {
      short: "n",
      kind: "string",
      value: "int",
      help: "Show n last created containers (includes all states)",
    },
    latest: {
      short: "l",
      kind: "bool",
      help: "Show the latest created container (includes all states)",
    },
    "no-trunc": { kind: "bool", help: "Don't truncate output" },
    quiet: { short: "q", kind: "bool", help: "Only display container IDs" },
    size: { short: "s", kind: "bool", help: "Display total file sizes" },
  },
});

/** A container as `ps` sees it: its record, its status now and, with `--size`, its sizes. */
export interface PsItem {
  /** The stored record. */
  rec: ContainerRecord;
  /** `containerStatus(rec)`, checked by the caller. */
  status: ContainerStatus;
  /** Running but paused (its cgroup frozen), checked by the caller. */
  paused?: boolean;
  /** Bytes in the writable layer, when asked for. */
  sizeRw?: number;
  /** Bytes of the image under it, when known (Docker's "virtual" size is both). */
  sizeImage?: number;
  /** It runs, but its network is broken (`networkProblem`'s label). */
  networkDown?: string;
}

/** Docker's container states, the values `status=` accepts. */
const STATES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];

/** What the `ps` filters select: values of one key are alternatives, keys all apply. */
export interface PsFilters {
  /** `status=`. */
  status: string[];
  /** `name=`: a substring of the name. */
  names: string[];
  /** `id=`: a prefix of the id. */
  ids: string[];
  /** `label=KEY` or `label=KEY=VALUE`, all of them. */
  labels: { key: string; value?: string }[];
  /** `ancestor=`: the image as named, or its id (`imageId` when the store resolved it). */
  ancestors: { value: string; imageId?: string }[];
  /** `exited=`: exit codes of exited containers. */
  exited: number[];
  /** `before=`: containers created before this one (id, name or id prefix). */
  before?: string;
  /** `since=`: containers created after this one. */
  since?: string;
}

/** Parses `--filter` values into {@link PsFilters}; a bad one is a usage error of `def`. */
export function parsePsFilters(def: CommandDef, filters: readonly string[]): PsFilters {
  const out: PsFilters = {
    status: [],
    names: [],
    ids: [],
    labels: [],
    ancestors: [],
    exited: [],
  };
  for (const f of filters) {
    const eq = f.indexOf("=");
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? "" : f.slice(eq + 1);
    if (eq < 0) {
      throw new UsageError(def, `bad format of filter "${f}": expected name=value`);
    }
    switch (key) {
      case "status":
        if (!STATES.includes(value)) {
          throw new UsageError(
            def,
            `invalid filter "${f}": status is one of ${STATES.join(", ")}`,
          );
        }
        out.status.push(value);
        break;
      case "name":
        out.names.push(value.startsWith("/") ? value.slice(1) : value);
        break;
      case "id":
        out.ids.push(value);
        break;
      case "label": {
        const at = value.indexOf("=");
        out.labels.push(
          at < 0 ? { key: value } : { key: value.slice(0, at), value: value.slice(at + 1) },
        );
        break;
      }
      case "ancestor":
        out.ancestors.push({ value });
        break;
      case "exited":
        if (!/^-?\d+$/.test(value)) {
          throw new UsageError(def, `invalid filter "${f}": exited takes an integer exit code`);
        }
        out.exited.push(Number(value));
        break;
      case "before":
      case "since":
        out[key] = value;
        break;
      default:
        throw new UsageError(
          def,
          `invalid filter "${f}": trun supports status=, name=, id=, label=, ancestor=, exited=, before= and since=`,
        );
    }
  }
  return out;
}

/** Whether `rec`'s image is `ancestor`: as named, in familiar form, or by id (prefix). */
function ancestorMatches(rec: ContainerRecord, ancestor: { value: string; imageId?: string }) {
  const { value } = ancestor;
  if (value === "") return false;
  if (rec.image === value) return true;
  if (rec.imageId !== "") {
    if (ancestor.imageId !== undefined && ancestor.imageId === rec.imageId) return true;
    const hex = rec.imageId.slice(rec.imageId.indexOf(":") + 1);
    const want = value.startsWith("sha256:") ? value.slice(7) : value;
    if (/^[0-9a-f]+$/.test(want) && hex.startsWith(want)) return true;
  }
  try {
    return parseReference(rec.image).familiar === parseReference(value).familiar;
  } catch {
    return false;
  }
}

/** The index in `items` (newest first) of the container `ref` names, as `findRecord` does. */
function indexOfRef(items: readonly PsItem[], ref: string, filter: string): number {
  let i = items.findIndex((x) => x.rec.id === ref);
  if (i < 0) i = items.findIndex((x) => x.rec.name === ref);
  if (i < 0 && /^[0-9a-f]+$/.test(ref)) {
    const found = items.flatMap((x, at) => x.rec.id.startsWith(ref) ? [at] : []);
    if (found.length > 1) {
      throw new Error(
        `multiple containers match "${ref}" in filter ${filter}: give more of the id`,
      );
    }
    i = found[0] ?? -1;
  }
  if (i < 0) throw Object.assign(new Error(`No such container: ${ref}`), { exitCode: 1 });
  return i;
}

/**
 * The containers `ps` lists, newest first, as the daemon chooses them: the
 * running ones, or all with `all`, a `status=` filter or a limit; then the
 * filters; then the first `last` (when positive). `items` are newest first,
 * as `store.listRecords()` returns them.
 */
export function selectContainers(
  items: readonly PsItem[],
  opts: { all: boolean; last: number; filters: PsFilters },
): PsItem[] {
  const { filters } = opts;
  const all = opts.all || opts.last > 0 || filters.status.length > 0;
  const beforeAt = filters.before === undefined
    ? undefined
    : indexOfRef(items, filters.before, `before=${filters.before}`);
  const sinceAt = filters.since === undefined
    ? undefined
    : indexOfRef(items, filters.since, `since=${filters.since}`);
  const any = <T>(values: readonly T[], test: (v: T) => boolean) =>
    values.length === 0 || values.some(test);
  const out: PsItem[] = [];
  items.forEach((item, at) => {
    const { rec, status } = item;
    if (!all && status !== "running") return;
    if (beforeAt !== undefined && at <= beforeAt) return;
    if (sinceAt !== undefined && at >= sinceAt) return;
    if (!any(filters.status, (s) => s === (item.paused ? "paused" : status))) return;
    if (!any(filters.names, (n) => rec.name.includes(n))) return;
    if (!any(filters.ids, (p) => rec.id.startsWith(p))) return;
    if (!any(filters.ancestors, (a) => ancestorMatches(rec, a))) return;
    if (!any(filters.exited, (c) => status === "exited" && rec.exitCode === c)) return;
    const labels = rec.labels ?? {};
    if (
      !filters.labels.every((l) =>
        Object.hasOwn(labels, l.key) && (l.value === undefined || labels[l.key] === l.value)
      )
    ) return;
    out.push(item);
  });
  return opts.last > 0 ? out.slice(0, opts.last) : out;
}

/**
 * The STATUS column as dockerd's `State.String()` words it: "Up 5 seconds",
 * "Exited (0) 3 seconds ago", "Created" (also for a container that never
 * started), "Removal In Progress". A container whose end nobody recorded
 * (its monitor was killed) shows what is known: "Exited" without a code or
 * a time.
 */
export function statusText(rec: ContainerRecord, status: ContainerStatus, now: number): string {
  const since = (t: string | undefined) => {
    const at = parseTime(t);
    return at === undefined ? undefined : humanDuration(Math.max(0, now - at));
  };
  switch (status) {
    case "running": {
      const up = since(rec.startedAt);
      return up === undefined ? "Up" : `Up ${up}`;
    }
    case "removing":
      return "Removal In Progress";
    case "created":
      return "Created";
    case "exited": {
      if (parseTime(rec.startedAt) === undefined) return "Created";
      const code = rec.exitCode === undefined ? "" : ` (${rec.exitCode})`;
      const ago = since(rec.finishedAt);
      return `Exited${code}${ago === undefined ? "" : ` ${ago} ago`}`;
    }
  }
}

/** A string as Go's `strconv.Quote` writes it (Docker quotes the COMMAND column so). */
export function goQuote(s: string): string {
  const named: Record<string, string> = { "\u0007": "\\a", "\u000b": "\\v" };
  return JSON.stringify(s).replace(/\\u00([0-9a-f]{2})/g, (_, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return named[c] ?? `\\x${hex}`;
  }).replaceAll("\u007f", "\\x7f");
}

/**
 * The IMAGE column as Docker's CLI shortens it: an image given by id as
 * the short id, a reference in familiar form without its digest
 * (`busybox`, `ghcr.io/o/app:1`); anything else (a `--rootfs` directory)
 * as recorded. With `noTrunc`, always as recorded.
 */
export function imageColumn(rec: ContainerRecord, noTrunc: boolean): string {
  if (rec.image === "") return "<no image>";
  if (noTrunc) return rec.image;
  if (rec.imageId !== "" && shortId(rec.imageId) === shortId(rec.image)) {
    return shortId(rec.imageId);
  }
  try {
    const ref = parseReference(rec.image);
    const name = rec.image.split("@")[0]!;
    const explicitTag = name.lastIndexOf(":") > name.lastIndexOf("/");
    return explicitTag && ref.tag !== undefined
      ? `${ref.familiarName}:${ref.tag}`
      : ref.familiarName;
  } catch {
    return rec.image;
  }
}

/** The SIZE column: writable layer, and with the image under it, Docker's "(virtual …)". */
function sizeText(item: PsItem): string {
  const rw = humanSize(item.sizeRw ?? 0, 3);
  if (item.sizeImage === undefined) return rw;
  return `${rw} (virtual ${humanSize((item.sizeRw ?? 0) + item.sizeImage, 3)})`;
}

/** One line of `docker ps --format json`, keys as Docker writes them (sorted). */
export function psJson(
  item: PsItem,
  opts: { noTrunc: boolean; now: number },
): Record<string, unknown> {
  const { rec } = item;
  const command = rec.command.join(" ");
  return {
    Command: goQuote(opts.noTrunc ? command : ellipsis(command, 20)),
    CreatedAt: goTimeString(rec.created),
    ID: opts.noTrunc ? rec.id : shortId(rec.id),
    Image: imageColumn(rec, opts.noTrunc),
    Labels: Object.entries(rec.labels ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      .map(([k, v]) => `${k}=${v}`).join(","),
    LocalVolumes: "0",
    Mounts: "",
    Names: rec.name,
    Networks: "",
    Ports: item.status === "running" ? portsColumn(rec.network?.ports ?? []) : "",
    RunningFor: timeAgo(rec.created, opts.now),
    Size: sizeText(item),
    State: item.paused ? "paused" : item.status,
    Status: statusText(rec, item.status, opts.now) + (item.paused ? " (Paused)" : "") +
      (item.networkDown ? ` (${item.networkDown})` : ""),
  };
}

const PS_LABELS: Record<string, string> = {
  ID: "CONTAINER ID",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Status: "STATUS",
  State: "STATE",
  Ports: "PORTS",
  Names: "NAMES",
  Labels: "LABELS",
  Size: "SIZE",
  Mounts: "MOUNTS",
  Networks: "NETWORKS",
  LocalVolumes: "LOCAL VOLUMES",
};

/** The lines `trun ps` prints for the selected containers. */
export function renderPs(
  items: readonly PsItem[],
  opts: { noTrunc: boolean; quiet: boolean; size: boolean; format: OutputFormat; now: number },
): string[] {
  if (opts.quiet) return items.map((i) => opts.noTrunc ? i.rec.id : shortId(i.rec.id));
  const json = (i: PsItem) => psJson(i, opts);
  const headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"];
  return renderItems(opts.format, items, {
    headers: opts.size ? [...headers, "SIZE"] : headers,
    row: (i) => {
      const j = json(i);
      const cells = [j.ID, j.Image, j.Command, j.RunningFor, j.Status, j.Ports, j.Names];
      if (opts.size) cells.push(j.Size);
      return cells as string[];
    },
    json,
    labels: PS_LABELS,
  });
}

/**
 * Bytes of the files under `dir` (a writable layer), each inode counted
 * once; directories it cannot read (rootless: owned by a subordinate id
 * with mode 0700) are skipped, as is a missing `dir`.
 */
export function treeSize(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (path: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(path)];
    } catch {
      return;
    }
    for (const e of entries) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) {
        walk(p);
        continue;
      }
      try {
        const st = Deno.lstatSync(p);
        if ((st.nlink ?? 1) > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        total += st.size;
      } catch {
        // Gone since the listing, or unreadable: not counted.
      }
    }
  };
  walk(dir);
  return total;
}

/** The value of `-n/--last`: a whole number, -1 when not given. */
function lastFlag(def: CommandDef, value: string | undefined, latest: boolean): number {
  if (value === undefined) return latest ? 1 : -1;
  if (!/^-?\d+$/.test(value.trim())) {
    throw new UsageError(def, `invalid argument "${value}" for "-n, --last" flag: not a number`);
  }
  return Number(value);
}

/** Runs `trun ps` (`name`, or `container ls`, names it in help and errors). */
export async function main(argv: string[], name = PS.name): Promise<number> {
  const def = { ...PS, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const format = formatFlag(def, p.flags.format);
  const filters = parsePsFilters(def, p.flags.filter);
  const last = lastFlag(def, p.flags.last, p.flags.latest);
  // Docker computes sizes for --size, or when a template shows .Size.
  const size = !p.flags.quiet &&
    (p.flags.size || (format.kind === "template" && /\.Size\b/.test(format.source)));
  if (size) {
    // Rootless, writable layers hold directories of subordinate ids that
    // only the storage user namespace may read: the sizes are counted there.
    const { runTrunForStorage, storageUsernsMapping } = await import(
      "../runtime/userns_exec.ts"
    );
    if (storageUsernsMapping() !== null) return await runTrunForStorage(["ps", ...argv]);
  }
  const store = openStore();
  try {
    for (const a of filters.ancestors) {
      try {
        const image = store.findImage(a.value);
        if (image !== undefined) a.imageId = image.id;
      } catch {
        // Not a stored image (or ambiguous): matched by name or id prefix only.
      }
    }
    const { networkProblem } = await import("../container/network_problem.ts");
    const { stopOrphanHelpers } = await import("../container/ops.ts");
    const records = store.listRecords();
    stopOrphanHelpers(store, records);
    const items = records.map((rec) => {
      const status = containerStatus(rec);
      const problem = status === "running" ? networkProblem(rec) : undefined;
      return {
        rec,
        status,
        ...(status === "running" && isPaused(rec) ? { paused: true } : {}),
        ...(problem ? { networkDown: problem.label } : {}),
      };
    });
    const selected: PsItem[] = selectContainers(items, { all: p.flags.all, last, filters });
    if (size) {
      const imageSizes = new Map(store.listImages().map((i) => [i.id, i.size]));
      for (const item of selected) {
        item.sizeRw = treeSize(`${store.containerDir(item.rec.id)}/upper`);
        const s = imageSizes.get(item.rec.imageId);
        if (s !== undefined) item.sizeImage = s;
      }
    }
    const lines = renderPs(selected, {
      noTrunc: p.flags["no-trunc"],
      quiet: p.flags.quiet,
      size,
      format,
      now: Date.now(),
    });
    for (const line of lines) println(line);
    return Promise.resolve(0);
  } finally {
    store.close();
  }
}
