/**
 * `trun history` and `trun image history`: the steps that built an image,
 * newest first, from its config's `history`, with Docker's table, JSON and
 * `--format` templates.
 */
import { defineCommand, parseArgs } from "./args.ts";
import { printHelp, println } from "./output.ts";
import {
  ellipsis,
  humanSize,
  type OutputFormat,
  parseTime,
  renderItems,
  shortId,
  timeAgo,
} from "./format.ts";
import { formatFlag } from "./_image_common.ts";
import { ImageError, type ImageRecord, openStore } from "../store/mod.ts";

/** The grammar of `trun history` and `trun image history`. */
export const HISTORY = defineCommand({
  name: "history",
  usage: "[OPTIONS] IMAGE",
  summary: "Show the history of an image",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Format output: table, json, or a Go template such as '{{.CreatedBy}}'",
    },
    human: {
      short: "H",
      kind: "bool",
      default: true,
      help: "Print sizes and dates in human readable format (default true; --human=false)",
    },
    "no-trunc": { kind: "bool", help: "Don't truncate output" },
    quiet: { short: "q", kind: "bool", help: "Only show image IDs" },
  },
});

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
export function main(argv: string[], name = HISTORY.name): Promise<number> {
  const def = { ...HISTORY, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const format = formatFlag(def, p.flags.format);
  const query = p.args[0]!;
  const store = openStore();
  try {
    const image = store.findImage(query);
    if (image === undefined) throw new ImageError("not-found", `No such image: "${query}"`);
    const lines = renderHistory(historyEntries(image, store.layerSizes(image.id)), {
      noTrunc: p.flags["no-trunc"],
      quiet: p.flags.quiet,
      human: p.flags.human,
      format,
    });
    for (const line of lines) println(line);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}
