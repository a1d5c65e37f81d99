/**
 * `trun system df` and `trun system prune`: Docker's disk usage summary of
 * images, containers, local volumes and build cache (trun has none), and
 * the prune of all of them at once, through the same code as `container
 * prune`, `volume prune` and `image prune`.
 *
 * The usage figures are computed by the pure {@link diskUsage} from what
 * the store lists and the sizes measured on disk (`treeSize`), so tests
 * build them by hand.
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import { goJson, humanSize, type OutputFormat, renderItems, table } from "./format.ts";
import { formatFlag } from "./_image_common.ts";
import type { ContainerRecord, ImageRecord, Store, VolumeRecord } from "../store/mod.ts";
import type { ContainerStatus } from "../container/status.ts";

/** The grammar of `system df`. */
export const SYSTEM_DF = defineCommand({
  name: "system df",
  usage: "[OPTIONS]",
  summary: "Show disk usage: images, containers, local volumes, build cache",
  maxArgs: 0,
  flags: {
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Format output: table, json, or a Go template such as '{{.Type}}\\t{{.Size}}'",
    },
    verbose: { short: "v", kind: "bool", help: "Show detailed information on space usage" },
  },
});

/** The grammar of `system prune`. */
export const SYSTEM_PRUNE = defineCommand({
  name: "system prune",
  usage: "[OPTIONS]",
  summary: "Remove unused data",
  maxArgs: 0,
  flags: {
    all: { short: "a", kind: "bool", help: "Remove all unused images, not just dangling ones" },
    force: { short: "f", kind: "bool", help: "Do not prompt for confirmation" },
    volumes: { kind: "bool", help: "Prune anonymous volumes" },
  },
});

/** An image with what `df` needs: its layers' sizes and its containers. */
export interface DfImage {
  /** The stored image. */
  image: ImageRecord;
  /** Unpacked bytes of each layer, as `image.layers` (bottom first). */
  layerSizes: number[];
  /** How many container records use it. */
  containers: number;
}

/** A container with its status now and the bytes of its writable layer. */
export interface DfContainer {
  /** Its record. */
  rec: ContainerRecord;
  /** `containerStatus(rec)`. */
  status: ContainerStatus;
  /** Bytes of its writable layer. */
  size: number;
}

/** A volume with the bytes of its data and how many containers use it. */
export interface DfVolume {
  /** Its record. */
  volume: VolumeRecord;
  /** Bytes under its `_data`. */
  size: number;
  /** Containers using it. */
  links: number;
}

/** One row of `system df`: Docker's fields (as strings, as its template sees them). */
export interface DfRow {
  /** `Images`, `Containers`, `Local Volumes`, `Build Cache`. */
  Type: string;
  /** How many. */
  TotalCount: string;
  /** How many in use. */
  Active: string;
  /** Their size. */
  Size: string;
  /** What removing the unused would free, with its share of the size. */
  Reclaimable: string;
}

/** Docker's RECLAIMABLE: the size, and when there is a total, the share in whole percent. */
function reclaimable(bytes: number, total: number): string {
  return total > 0
    ? `${humanSize(bytes)} (${Math.trunc((bytes * 100) / total)}%)`
    : humanSize(bytes);
}

/**
 * The rows of `system df`. Images count each layer once however many images
 * share it; what is reclaimable is what no image with a container uses.
 * Containers are active when running; their size is their writable layers.
 * Volumes are active when a container uses them.
 */
export function diskUsage(
  images: readonly DfImage[],
  containers: readonly DfContainer[],
  volumes: readonly DfVolume[],
): DfRow[] {
  const layers = new Map<string, number>();
  const usedLayers = new Set<string>();
  for (const i of images) {
    i.image.layers.forEach((chain, k) => {
      layers.set(chain, i.layerSizes[k] ?? 0);
      if (i.containers > 0) usedLayers.add(chain);
    });
  }
  const imageTotal = [...layers.values()].reduce((a, b) => a + b, 0);
  const imageUsed = [...usedLayers].reduce((a, c) => a + (layers.get(c) ?? 0), 0);
  const running = (c: DfContainer) => c.status === "running";
  const sum = <T>(xs: readonly T[], f: (x: T) => number) => xs.reduce((a, x) => a + f(x), 0);
  const ctrTotal = sum(containers, (c) => c.size);
  const volTotal = sum(volumes, (v) => v.size);
  return [
    {
      Type: "Images",
      TotalCount: String(images.length),
      Active: String(images.filter((i) => i.containers > 0).length),
      Size: humanSize(imageTotal),
      Reclaimable: reclaimable(imageTotal - imageUsed, imageTotal),
    },
    {
      Type: "Containers",
      TotalCount: String(containers.length),
      Active: String(containers.filter(running).length),
      Size: humanSize(ctrTotal),
      Reclaimable: reclaimable(sum(containers.filter((c) => !running(c)), (c) => c.size), ctrTotal),
    },
    {
      Type: "Local Volumes",
      TotalCount: String(volumes.length),
      Active: String(volumes.filter((v) => v.links > 0).length),
      Size: humanSize(volTotal),
      Reclaimable: reclaimable(sum(volumes.filter((v) => v.links === 0), (v) => v.size), volTotal),
    },
    { Type: "Build Cache", TotalCount: "0", Active: "0", Size: "0B", Reclaimable: "0B" },
  ];
}

/** The lines of `system df` (without -v). */
export function renderDiskUsage(rows: readonly DfRow[], format: OutputFormat): string[] {
  return renderItems(format, rows, {
    headers: ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
    row: (r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable],
    json: (r) => ({
      Active: r.Active,
      Reclaimable: r.Reclaimable,
      Size: r.Size,
      TotalCount: r.TotalCount,
      Type: r.Type,
    }),
    labels: {
      Type: "TYPE",
      TotalCount: "TOTAL",
      Active: "ACTIVE",
      Size: "SIZE",
      Reclaimable: "RECLAIMABLE",
    },
  });
}

/** What `system df` measures in the store. */
async function measure(
  store: Store,
): Promise<{ images: DfImage[]; containers: DfContainer[]; volumes: DfVolume[] }> {
  const { treeSize } = await import("./ps.ts");
  const { containerStatus } = await import("../container/status.ts");
  const records = store.listRecords();
  const uses = new Map<string, number>();
  for (const r of records) uses.set(r.imageId, (uses.get(r.imageId) ?? 0) + 1);
  const users = store.volumeUsers();
  return {
    images: store.listImages().map((image) => ({
      image,
      layerSizes: store.layerSizes(image.id),
      containers: uses.get(image.id) ?? 0,
    })),
    containers: records.map((rec) => ({
      rec,
      status: containerStatus(rec),
      size: treeSize(`${store.containerDir(rec.id)}/upper`),
    })),
    volumes: store.listVolumes().map((volume) => ({
      volume,
      size: treeSize(store.volumePath(volume.name)),
      links: users.get(volume.name)?.length ?? 0,
    })),
  };
}

/** The sections of `system df -v` (Docker's verbose layout), or its JSON document. */
async function verbose(
  def: CommandDef,
  m: Awaited<ReturnType<typeof measure>>,
  format: string | undefined,
): Promise<string[]> {
  const { imageRows, imageJson } = await import("./images.ts");
  const { psJson } = await import("./ps.ts");
  const now = Date.now();
  const layerUsers = new Map<string, number>();
  for (const i of m.images) {
    for (const l of new Set(i.image.layers)) {
      layerUsers.set(l, (layerUsers.get(l) ?? 0) + 1);
    }
  }
  const shared = (i: DfImage) =>
    i.image.layers.reduce(
      (a, l, k) => a + ((layerUsers.get(l) ?? 0) > 1 ? i.layerSizes[k] ?? 0 : 0),
      0,
    );
  const byId = new Map(m.images.map((i) => [i.image.id, i]));
  const images: Record<string, unknown>[] = imageRows(m.images.map((i) => i.image), {
    digests: false,
    filters: { references: [], labels: [] },
  }).map((row) => {
    const i = byId.get(row.image.id)!;
    return {
      ...imageJson(row, { noTrunc: false, now }),
      Containers: String(i.containers),
      SharedSize: humanSize(shared(i), 3),
      UniqueSize: humanSize(row.image.size - shared(i), 3),
    };
  });
  const containers: Record<string, unknown>[] = m.containers.map((c) => ({
    ...psJson({ rec: c.rec, status: c.status }, { noTrunc: false, now }),
    LocalVolumes: String(c.rec.volumes?.length ?? 0),
    Size: humanSize(c.size, 3),
  }));
  const volumes: Record<string, unknown>[] = m.volumes.map((v) => ({
    Name: v.volume.name,
    Links: String(v.links),
    Size: humanSize(v.size),
  }));
  if (format === "json") {
    return [goJson({ Images: images, Containers: containers, Volumes: volumes, BuildCache: [] })];
  }
  if (format !== undefined && format !== "" && format !== "table") {
    throw new UsageError(def, "with --verbose, --format takes table or json");
  }
  const section = (
    title: string,
    headers: string[],
    keys: string[],
    items: Record<string, unknown>[],
  ) => [
    title,
    "",
    ...table([headers, ...items.map((x) => keys.map((k) => String(x[k])))]).split("\n"),
    "",
  ];
  return [
    ...section(
      "Images space usage:",
      [
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
      ],
      ["Repository", "Tag", "ID", "CreatedSince", "Size", "SharedSize", "UniqueSize", "Containers"],
      images,
    ),
    ...section(
      "Containers space usage:",
      ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
      ["ID", "Image", "Command", "LocalVolumes", "Size", "RunningFor", "Status", "Names"],
      containers,
    ),
    ...section(
      "Local Volumes space usage:",
      ["VOLUME NAME", "LINKS", "SIZE"],
      ["Name", "Links", "Size"],
      volumes,
    ),
    "Build cache usage: 0B",
    "",
    table([["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"]]),
  ];
}

/** Runs `trun system df`. */
export async function dfCommand(argv: string[], name = SYSTEM_DF.name): Promise<number> {
  const def = { ...SYSTEM_DF, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const format = p.flags.verbose ? undefined : formatFlag(def, p.flags.format);
  const { openStore } = await import("../store/mod.ts");
  const store = openStore(undefined, { repair: false });
  let lines: string[];
  try {
    const m = await measure(store);
    lines = format === undefined
      ? await verbose(def, m, p.flags.format)
      : renderDiskUsage(diskUsage(m.images, m.containers, m.volumes), format);
  } finally {
    store.close();
  }
  for (const l of lines) println(l);
  return 0;
}

/** Docker's warning of `system prune`, listing what the flags remove. */
export function systemPruneWarning(all: boolean, volumes: boolean): string {
  return [
    "WARNING! This will remove:",
    "  - all stopped containers",
    ...(volumes ? ["  - all anonymous volumes not used by at least one container"] : []),
    all
      ? "  - all images without at least one container associated to them"
      : "  - all dangling images",
    "",
  ].join("\n");
}

/**
 * Runs `trun system prune`: stopped containers, then with `--volumes`
 * anonymous unused volumes, then dangling (with `-a`, all unused) images,
 * each section printed as its own prune prints it, then one total.
 */
export async function pruneCommand(argv: string[], name = SYSTEM_PRUNE.name): Promise<number> {
  const def = { ...SYSTEM_PRUNE, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const { confirmPrune, printImagePrune, pruneImages } = await import("./prune.ts");
  if (
    !p.flags.force && !await confirmPrune(def, systemPruneWarning(p.flags.all, p.flags.volumes))
  ) {
    return 0;
  }
  const { pruneContainers, printContainerPrune } = await import("./container_ops.ts");
  const { pruneVolumes, printVolumePrune } = await import("./volume.ts");
  const { openStore } = await import("../store/mod.ts");
  const store = openStore();
  let reclaimed = 0;
  try {
    const containers = await pruneContainers(store);
    printContainerPrune(containers);
    reclaimed += containers.reclaimed;
    if (p.flags.volumes) {
      const volumes = pruneVolumes(store, false);
      printVolumePrune(volumes, false);
      reclaimed += volumes.reclaimed;
    }
    const images = pruneImages(store, p.flags.all);
    printImagePrune(images);
    reclaimed += images.reclaimed;
  } finally {
    store.close();
  }
  println(`Total reclaimed space: ${humanSize(reclaimed)}`);
  return 0;
}
