/**
 * `trun volume create|ls|rm|prune` (`volume inspect` is in inspect.ts):
 * Docker's volume commands on the store's volumes (lib/store/volumes.ts),
 * with its flags, output and exit codes (1 for a volume error, as the
 * daemon's). Plus an internal command run in the storage user namespace:
 * `volume-copyup` (an image's content into an empty volume).
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printError, printHelp, println } from "./output.ts";
import { humanSize, type OutputFormat, renderItems } from "./format.ts";
import { formatFlag, messageOf } from "./_image_common.ts";
import { confirmPrune } from "./prune.ts";
import { treeSize } from "./ps.ts";
import { isAnonymous, openStore, type Store, type VolumeRecord } from "../store/mod.ts";

/** The grammar of `volume create`. */
export const VOLUME_CREATE = defineCommand({
  name: "volume create",
  usage: "[OPTIONS] [VOLUME]",
  summary: "Create a volume",
  maxArgs: 1,
  flags: {
    driver: { short: "d", kind: "string", value: "DRIVER", help: "Volume driver (local)" },
    label: { short: "l", kind: "list", value: "KEY=VALUE", help: "Set metadata for a volume" },
    opt: {
      short: "o",
      kind: "list",
      value: "KEY=VALUE",
      help: "Driver options: type=tmpfs|bind, device=PATH, o=OPTIONS",
    },
  },
});

/** The grammar of `volume ls`. */
export const VOLUME_LS = defineCommand({
  name: "volume ls",
  usage: "[OPTIONS]",
  summary: "List volumes",
  maxArgs: 0,
  flags: {
    filter: {
      short: "f",
      kind: "list",
      value: "FILTER",
      help: "Filter output: dangling=true|false, driver=, label=KEY[=VALUE], label!=, name=",
    },
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Format output: table, json, or a Go template such as '{{.Name}}'",
    },
    quiet: { short: "q", kind: "bool", help: "Only display volume names" },
  },
});

/** The grammar of `volume rm`. */
export const VOLUME_RM = defineCommand({
  name: "volume rm",
  usage: "[OPTIONS] VOLUME [VOLUME...]",
  summary: "Remove one or more volumes",
  minArgs: 1,
  flags: {
    force: {
      short: "f",
      kind: "bool",
      help: "No error for a missing volume; remove the containers using it first (Podman's -f)",
    },
  },
});

/** The grammar of `volume prune`. */
export const VOLUME_PRUNE = defineCommand({
  name: "volume prune",
  usage: "[OPTIONS]",
  summary: "Remove unused volumes",
  maxArgs: 0,
  flags: {
    all: {
      short: "a",
      kind: "bool",
      help: "Remove all unused volumes, not just anonymous ones",
    },
    filter: {
      kind: "list",
      value: "FILTER",
      help: "Only volumes with (label=KEY[=VALUE]) or without (label!=…) a label",
    },
    force: { short: "f", kind: "bool", help: "Do not prompt for confirmation" },
  },
});

const COPYUP = defineCommand({
  name: "volume-copyup",
  usage: "--layer DIR… PATH DATA-DIR",
  summary: "(internal) copy an image's PATH into an empty volume",
  minArgs: 2,
  maxArgs: 2,
  flags: { layer: { kind: "list", value: "DIR", help: "A layer of the root, top first" } },
});

const SWEEP = defineCommand({
  name: "volume-sweep",
  usage: "",
  summary: "(internal) delete the data of removed volumes",
  maxArgs: 0,
  flags: {},
});

/** A volume error, with the daemon's exit status (1). */
function volumeError(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 1 });
}

/** `KEY=VALUE` flags as a map (a bare KEY has an empty value, as Docker's labels). */
export function keyValues(
  def: CommandDef,
  list: readonly string[],
  what: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const eq = kv.indexOf("=");
    if (eq === 0) throw new UsageError(def, `invalid ${what} "${kv}": the key is empty`);
    out[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? "" : kv.slice(eq + 1);
  }
  return out;
}

/** Runs `trun volume create`: prints the volume's name. */
export function createCommand(argv: string[], name = VOLUME_CREATE.name): Promise<number> {
  const def = { ...VOLUME_CREATE, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const store = openStore(undefined, { repair: false });
  try {
    const { volume } = store.createVolume({
      ...(p.args[0] !== undefined ? { name: p.args[0] } : {}),
      ...(p.flags.driver !== undefined ? { driver: p.flags.driver } : {}),
      labels: keyValues(def, p.flags.label, "label"),
      options: keyValues(def, p.flags.opt, "option"),
    });
    println(volume.name);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}

/** What `volume ls --filter` selects: keys all apply, values of one key are alternatives. */
export interface VolumeFilters {
  /** `dangling=`: unused (true) or used (false). */
  dangling?: boolean;
  /** `driver=`. */
  drivers: string[];
  /** `name=`: a regular expression (or substring) of the name. */
  names: string[];
  /** `label=KEY[=VALUE]`, all of them. */
  labels: { key: string; value?: string }[];
  /** `label!=KEY[=VALUE]`, none of them. */
  notLabels: { key: string; value?: string }[];
}

/** Parses `--filter` values of `volume ls`/`volume prune`; `keys` are the ones allowed. */
export function parseVolumeFilters(
  def: CommandDef,
  filters: readonly string[],
  keys: readonly string[] = ["dangling", "driver", "label", "label!", "name"],
): VolumeFilters {
  const out: VolumeFilters = { drivers: [], names: [], labels: [], notLabels: [] };
  const label = (v: string) => {
    const eq = v.indexOf("=");
    return eq < 0 ? { key: v } : { key: v.slice(0, eq), value: v.slice(eq + 1) };
  };
  for (const f of filters) {
    const eq = f.indexOf("=");
    if (eq <= 0) throw new UsageError(def, `bad format of filter "${f}": expected name=value`);
    const key = f.slice(0, eq);
    const value = f.slice(eq + 1);
    if (!keys.includes(key)) {
      throw new UsageError(
        def,
        `invalid filter "${f}": trun supports ${keys.map((k) => `${k}=`).join(", ")}`,
      );
    }
    if (key === "dangling") {
      if (!["true", "false", "1", "0"].includes(value)) {
        throw new UsageError(def, `invalid filter "${f}": dangling is true or false`);
      }
      out.dangling = value === "true" || value === "1";
    } else if (key === "driver") out.drivers.push(value);
    else if (key === "name") out.names.push(value);
    else if (key === "label") out.labels.push(label(value));
    else out.notLabels.push(label(value));
  }
  return out;
}

/** Whether `name` matches a `name=` filter: as a regular expression, else as a substring. */
function nameMatches(name: string, pattern: string): boolean {
  try {
    return new RegExp(pattern).test(name);
  } catch {
    return name.includes(pattern);
  }
}

/** The volumes `filters` select; `users` are the containers using each volume. */
export function selectVolumes(
  volumes: readonly VolumeRecord[],
  users: ReadonlyMap<string, readonly string[]>,
  filters: VolumeFilters,
): VolumeRecord[] {
  const has = (v: VolumeRecord, l: { key: string; value?: string }) =>
    Object.hasOwn(v.labels, l.key) && (l.value === undefined || v.labels[l.key] === l.value);
  return volumes.filter((v) =>
    (filters.dangling === undefined || filters.dangling === !users.has(v.name)) &&
    (filters.drivers.length === 0 || filters.drivers.includes(v.driver)) &&
    (filters.names.length === 0 || filters.names.some((n) => nameMatches(v.name, n))) &&
    filters.labels.every((l) => has(v, l)) &&
    !filters.notLabels.some((l) => has(v, l))
  );
}

/** Labels as Docker's `{{.Labels}}` column writes them: `k=v` joined by commas, sorted. */
export function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([k, v]) => `${k}=${v}`).join(",");
}

/** One line of `docker volume ls --format json` (keys as Docker writes them, sorted). */
export function volumeJson(v: VolumeRecord, mountpoint: string): Record<string, unknown> {
  return {
    Availability: "N/A",
    Driver: v.driver,
    Group: "N/A",
    Labels: labelText(v.labels),
    Links: "N/A",
    Mountpoint: mountpoint,
    Name: v.name,
    Scope: "local",
    Size: "N/A",
    Status: "N/A",
  };
}

/** The lines `trun volume ls` prints. */
export function renderVolumes(
  volumes: readonly { volume: VolumeRecord; mountpoint: string }[],
  opts: { quiet: boolean; format: OutputFormat },
): string[] {
  if (opts.quiet) return volumes.map((v) => v.volume.name);
  const json = (v: { volume: VolumeRecord; mountpoint: string }) =>
    volumeJson(v.volume, v.mountpoint);
  return renderItems(opts.format, volumes, {
    headers: ["DRIVER", "VOLUME NAME"],
    row: (v) => [v.volume.driver, v.volume.name],
    json,
    labels: { Name: "VOLUME NAME", Driver: "DRIVER", Mountpoint: "MOUNTPOINT" },
  });
}

/** Runs `trun volume ls`. */
export function lsCommand(argv: string[], name = VOLUME_LS.name): Promise<number> {
  const def = { ...VOLUME_LS, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const format = formatFlag(def, p.flags.format);
  const filters = parseVolumeFilters(def, p.flags.filter);
  const store = openStore(undefined, { repair: false });
  try {
    const selected = selectVolumes(store.listVolumes(), store.volumeUsers(), filters);
    const lines = renderVolumes(
      selected.map((volume) => ({ volume, mountpoint: store.volumePath(volume.name) })),
      { quiet: p.flags.quiet, format },
    );
    for (const l of lines) println(l);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}

/**
 * Removes volume `name`, refusing one in use (`force`: its containers are
 * removed first, as Podman's `volume rm -f`; a foreground `trun run` still
 * using it is never removed). Runs in the caller's own process, so running
 * containers are killed from the user namespace that owns them (see
 * removeHere); the volume's files, which may belong to subordinate ids, go
 * through the storage user namespace when this process may not delete
 * them. Returns false when there is no such volume.
 */
export async function removeVolume(
  open: () => Store,
  name: string,
  force: boolean,
): Promise<boolean> {
  let store = open();
  try {
    if (store.getVolume(name) === undefined) return false;
    const users = store.volumeUsers().get(name) ?? [];
    if (users.length > 0) {
      const records = users.map((id) => store.findRecord(id));
      if (!force || records.some((r) => r === undefined)) {
        throw volumeError(
          `remove ${name}: volume is in use - [${users.join(", ")}]: remove ${
            users.length === 1 ? "that container" : "those containers"
          } first${
            force
              ? " (a foreground trun run uses it)"
              : `, or use --force to remove ${users.length === 1 ? "it" : "them"} too`
          }`,
        );
      }
      store.close();
      const { removeHere } = await import("../container/ops.ts");
      for (const id of users) await removeHere(open, id, { force: true, volumes: true });
      store = open();
    }
    try {
      store.removeVolume(name);
      return true;
    } catch (e) {
      const denied = e instanceof Deno.errors.PermissionDenied ||
        e instanceof Deno.errors.NotCapable;
      const { runTrunForStorage, storageUsernsMapping } = await import(
        "../runtime/userns_exec.ts"
      );
      if (!denied || storageUsernsMapping() === null) throw e;
      // The volume is gone from the store and its data set aside
      // (`.del-*`); the storage user namespace may delete what is left.
      const code = await runTrunForStorage(["volume-sweep"], { quiet: true });
      if (code !== 0) {
        throw volumeError(
          `remove ${name}: its files could not be deleted in the storage user namespace; ` +
            `"trun volume prune" retries`,
        );
      }
      return true;
    }
  } finally {
    store.close();
  }
}

/** Runs `trun volume rm`: prints each name removed; exit 1 when any failed. */
export async function rmCommand(argv: string[], name = VOLUME_RM.name): Promise<number> {
  const def = { ...VOLUME_RM, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const open = () => openStore(undefined, { repair: false });
  const store = open();
  try {
    store.sweepVolumeLeftovers();
  } finally {
    store.close();
  }
  let failed = false;
  for (const v of p.args) {
    try {
      if (!await removeVolume(open, v, p.flags.force) && !p.flags.force) {
        throw volumeError(`No such volume: ${v}`);
      }
      println(v);
    } catch (e) {
      failed = true;
      printError(messageOf(e));
    }
  }
  return failed ? 1 : 0;
}

/** Runs `trun volume-sweep` (internal): deletes the data of removed volumes. */
export function sweepCommand(argv: string[]): Promise<number> {
  const p = parseArgs(SWEEP, argv);
  if (p.help) return Promise.resolve(printHelp(SWEEP));
  const store = openStore(undefined, { repair: false });
  try {
    store.sweepVolumeLeftovers();
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}

/** What {@link pruneVolumes} removed. */
export interface VolumePruneReport {
  /** Names of the volumes removed. */
  deleted: string[];
  /** Bytes their data held. */
  reclaimed: number;
}

/**
 * Removes the volumes no container uses: only anonymous ones unless `all`
 * (Docker 23+), and only those `filters` select.
 */
export function pruneVolumes(
  store: Store,
  all: boolean,
  filters?: VolumeFilters,
): VolumePruneReport {
  store.sweepVolumeLeftovers();
  const unused = selectVolumes(store.listVolumes(), store.volumeUsers(), {
    drivers: [],
    names: [],
    labels: [],
    notLabels: [],
    ...filters,
    dangling: true,
  });
  const report: VolumePruneReport = { deleted: [], reclaimed: 0 };
  for (const v of unused) {
    if (!all && !isAnonymous(v)) continue;
    const size = treeSize(store.volumePath(v.name));
    if (store.removeVolume(v.name)) {
      report.deleted.push(v.name);
      report.reclaimed += size;
    }
  }
  return report;
}

/** Prints a volume prune's report, as Docker does. */
export function printVolumePrune(report: VolumePruneReport, total: boolean): void {
  if (report.deleted.length > 0) println(["Deleted Volumes:", ...report.deleted, ""].join("\n"));
  if (total) println(`Total reclaimed space: ${humanSize(report.reclaimed)}`);
}

/** Runs `trun volume prune`. */
export async function pruneCommand(argv: string[], name = VOLUME_PRUNE.name): Promise<number> {
  const def = { ...VOLUME_PRUNE, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const filters = parseVolumeFilters(def, p.flags.filter, ["label", "label!"]);
  const warning = p.flags.all
    ? "WARNING! This will remove all local volumes not used by at least one container."
    : "WARNING! This will remove anonymous local volumes not used by at least one container.";
  if (!p.flags.force && !await confirmPrune(def, warning)) return 0;
  const store = openStore(undefined, { repair: false });
  try {
    printVolumePrune(pruneVolumes(store, p.flags.all, filters), true);
  } finally {
    store.close();
  }
  return 0;
}

/** Runs `trun volume-copyup`: Docker's copy-up, in the storage user namespace. */
export async function copyUpCommand(argv: string[]): Promise<number> {
  const p = parseArgs(COPYUP, argv);
  if (p.help) return printHelp(COPYUP);
  const { copyDirOut } = await import("../runtime/rootfs_files.ts");
  const [path, data] = p.args as [string, string];
  copyDirOut(p.flags.layer, path, data);
  return 0;
}
