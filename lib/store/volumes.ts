/**
 * Volumes in the store's `volumes` table, with their data under
 * `<store>/volumes/<name>/_data` as Podman keeps it: Docker's `local`
 * driver, named (`volume create`, `-v NAME:/path`) or anonymous (`-v
 * /path`: a 64-hex name and Docker's `com.docker.volume.anonymous` label).
 *
 * A volume's row is its existence; its directory is made on demand, so a
 * create killed between the two leaves a volume whose directory the next
 * mount makes. Removal renames the directory to `<name>.del-<random>`
 * first, so a volume created again with the same name never finds old
 * data; leftovers of a killed removal are swept later.
 */
import type { StoreContext } from "./db.ts";
import { processAlive } from "./containers.ts";
import { removeTree } from "../util/fs.ts";

/** Docker's rule for a local volume name: at least two characters, the first alphanumeric. */
export const VOLUME_NAME_PATTERN: RegExp = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The label Docker (23+) puts on anonymous volumes; `volume prune` without `-a` removes only these. */
export const ANONYMOUS_LABEL = "com.docker.volume.anonymous";

/** A volume as the store keeps it. */
export interface VolumeRecord {
  /** Its name. */
  name: string;
  /** Its driver (always `local`). */
  driver: string;
  /** Creation time (RFC 3339). */
  created: string;
  /** `--label`s. */
  labels: Record<string, string>;
  /** The local driver's `-o` options (`type`, `device`, `o`). */
  options: Record<string, string>;
}

/** How a volume's data reaches a container, decided from its driver options. */
export type VolumeBacking =
  /** A directory bound into the container: `_data`, or the `device` of `type=bind`. */
  | { kind: "dir"; path: string; readOnly?: boolean }
  /** `type=tmpfs`: a tmpfs with the `o=` options, made for each container. */
  | { kind: "tmpfs"; options: string[] };

/** Whether `name` is a valid volume name; an error in Docker's words otherwise. */
export function checkVolumeName(name: string): void {
  if (!VOLUME_NAME_PATTERN.test(name)) {
    throw Object.assign(
      new Error(
        `create ${name}: "${name}" includes invalid characters for a local volume name, ` +
          `only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; ` +
          "if you meant a host directory, give its absolute path",
      ),
      { exitCode: 1 },
    );
  }
}

/** A fresh anonymous volume name: 64 hex digits, as Docker's. */
export function anonymousVolumeName(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Whether `v` is anonymous (made for one container by `-v /path`). */
export function isAnonymous(v: VolumeRecord): boolean {
  return Object.hasOwn(v.labels, ANONYMOUS_LABEL);
}

const LOCAL_TYPES = ["tmpfs", "bind"];

/**
 * Checks the local driver's `-o` options and says how the volume's data is
 * mounted: plain (`_data`), `type=bind` with an absolute `device=` and
 * `o=bind` (or `rbind`, with `ro`), or `type=tmpfs` with `o=` tmpfs options.
 * Other types (devices, NFS) would mount on the host, which a rootless
 * user cannot do: they are refused, as are unknown keys.
 */
export function volumeBacking(
  v: Pick<VolumeRecord, "name" | "options">,
  dataPath: string,
): VolumeBacking {
  const o = v.options;
  for (const key of Object.keys(o)) {
    if (!["type", "device", "o"].includes(key)) {
      throw volumeError(
        `create ${v.name}: invalid option: "${key}" (the local driver takes type, device and o)`,
      );
    }
  }
  const type = o.type;
  if (type === undefined || type === "") {
    if (o.device !== undefined || o.o !== undefined) {
      throw volumeError(`create ${v.name}: missing "type" option: give type=bind or type=tmpfs`);
    }
    return { kind: "dir", path: dataPath };
  }
  if (!LOCAL_TYPES.includes(type)) {
    throw volumeError(
      `create ${v.name}: the local driver of trun mounts type=bind and type=tmpfs only, not "${type}": ` +
        "mounting a device or network filesystem needs the host's root",
    );
  }
  const opts = (o.o ?? "").split(",").filter((x) => x !== "");
  if (type === "tmpfs") {
    if (o.device !== undefined && o.device !== "tmpfs") {
      throw volumeError(`create ${v.name}: a tmpfs volume takes no device (or device=tmpfs)`);
    }
    return { kind: "tmpfs", options: opts };
  }
  const device = o.device ?? "";
  if (!device.startsWith("/")) {
    throw volumeError(`create ${v.name}: type=bind needs device=ABSOLUTE-HOST-PATH`);
  }
  if (!opts.some((x) => x === "bind" || x === "rbind")) {
    throw volumeError(`create ${v.name}: type=bind needs o=bind (or o=rbind)`);
  }
  const bad = opts.find((x) => !["bind", "rbind", "ro", "rw"].includes(x));
  if (bad !== undefined) {
    throw volumeError(
      `create ${v.name}: bind option "${bad}" is not supported (bind, rbind, ro, rw)`,
    );
  }
  const readOnly = opts.filter((x) => x === "ro" || x === "rw").at(-1) === "ro";
  return { kind: "dir", path: device, ...(readOnly ? { readOnly } : {}) };
}

function volumeError(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 1 });
}

/** `<store>/volumes/<name>`. */
export function volumeDir(root: string, name: string): string {
  return `${root}/volumes/${name}`;
}

/** `<store>/volumes/<name>/_data`: the volume's Mountpoint. */
export function volumeDataPath(root: string, name: string): string {
  return `${volumeDir(root, name)}/_data`;
}

interface VolumeRow {
  name: string;
  driver: string;
  created: string;
  labels: string;
  options: string;
}

function fromRow(r: VolumeRow): VolumeRecord {
  return {
    name: r.name,
    driver: r.driver,
    created: r.created,
    labels: JSON.parse(r.labels) as Record<string, string>,
    options: JSON.parse(r.options) as Record<string, string>,
  };
}

/** The volume named `name`, or undefined. */
export function getVolume(ctx: StoreContext, name: string): VolumeRecord | undefined {
  const row = ctx.db.prepare("SELECT * FROM volumes WHERE name = ?").get(name) as
    | VolumeRow
    | undefined;
  return row ? fromRow(row) : undefined;
}

/** Every volume, by name. */
export function listVolumes(ctx: StoreContext): VolumeRecord[] {
  return (ctx.db.prepare("SELECT * FROM volumes ORDER BY name").all() as unknown as VolumeRow[])
    .map(fromRow);
}

/** What `createVolume` is given. */
export interface NewVolume {
  /** Its name (a fresh anonymous one when absent). */
  name?: string;
  /** Its driver (default `local`; no other is known). */
  driver?: string;
  /** Labels. */
  labels?: Record<string, string>;
  /** Local driver options. */
  options?: Record<string, string>;
  /** An anonymous volume: gets Docker's anonymous label. */
  anonymous?: boolean;
}

/**
 * Creates a volume, or returns the existing one of that name (Docker's
 * `volume create` is idempotent); `created` says which. Its `_data`
 * directory is made mode 0755, owned by the caller: rootless, the
 * container's root.
 */
export function createVolume(
  ctx: StoreContext,
  v: NewVolume,
): { volume: VolumeRecord; created: boolean } {
  const name = v.name ?? anonymousVolumeName();
  checkVolumeName(name);
  const driver = v.driver ?? "local";
  if (driver !== "local") {
    throw volumeError(
      `create ${name}: volume driver "${driver}" is not available: trun has the local driver only`,
    );
  }
  const options = v.options ?? {};
  volumeBacking({ name, options }, volumeDataPath(ctx.root, name));
  const labels = { ...(v.labels ?? {}), ...(v.anonymous ? { [ANONYMOUS_LABEL]: "" } : {}) };
  const created = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const res = ctx.db.prepare(
    "INSERT OR IGNORE INTO volumes (name, driver, created, labels, options) VALUES (?, ?, ?, ?, ?)",
  ).run(name, driver, created, JSON.stringify(labels), JSON.stringify(options));
  const volume = getVolume(ctx, name)!;
  ensureVolumeDir(ctx.root, name);
  return { volume, created: Number(res.changes) > 0 };
}

/** Makes `volumes/<name>/_data` when missing (a create killed half-way, or a fresh volume). */
export function ensureVolumeDir(root: string, name: string): string {
  const data = volumeDataPath(root, name);
  try {
    Deno.statSync(data);
    return data;
  } catch {
    // Missing: made below.
  }
  Deno.mkdirSync(`${root}/volumes`, { recursive: true, mode: 0o700 });
  Deno.mkdirSync(volumeDir(root, name), { recursive: true, mode: 0o700 });
  try {
    Deno.mkdirSync(data, { mode: 0o755 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  // mkdir's mode passes through the umask; a volume root is 0755 as Docker's.
  Deno.chmodSync(data, 0o755);
  return data;
}

/**
 * The containers that use each volume: every container record (running or
 * not, as Docker counts them) and every foreground `trun run` still alive.
 */
export function volumeUsers(ctx: StoreContext): Map<string, string[]> {
  const rows = ctx.db.prepare("SELECT id, state FROM containers").all() as {
    id: string;
    state: string;
  }[];
  const users = new Map<string, string[]>();
  for (const r of rows) {
    let names: string[] = [];
    try {
      const s = JSON.parse(r.state) as {
        kind?: unknown;
        pid?: unknown;
        volumes?: unknown;
      };
      if (!Array.isArray(s.volumes)) continue;
      const pid = Number(s.pid) || 0;
      if (s.kind !== "container" && (pid <= 0 || !processAlive(pid))) continue;
      names = s.volumes.map((v: unknown) =>
        typeof v === "string" ? v : String((v as { name?: unknown }).name ?? "")
      );
    } catch {
      continue;
    }
    for (const n of new Set(names)) {
      if (n === "") continue;
      users.set(n, [...(users.get(n) ?? []), r.id]);
    }
  }
  return users;
}

/**
 * Removes volume `name`: its directory is renamed aside, then the row goes,
 * then the data. Returns false when there was no such volume. Run where
 * files of subordinate ids can be deleted (the storage user namespace).
 */
export function removeVolume(ctx: StoreContext, name: string): boolean {
  if (getVolume(ctx, name) === undefined) return false;
  const dir = volumeDir(ctx.root, name);
  const aside = `${dir}.del-${anonymousVolumeName().slice(0, 12)}`;
  let moved = true;
  try {
    Deno.renameSync(dir, aside);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    moved = false;
  }
  ctx.db.prepare("DELETE FROM volumes WHERE name = ?").run(name);
  if (moved) removeTree(aside);
  return true;
}

/** Removes what killed volume removals left (`volumes/*.del-*`); returns how many. */
export function sweepVolumeLeftovers(root: string): number {
  let n = 0;
  try {
    for (const e of Deno.readDirSync(`${root}/volumes`)) {
      if (!/\.del-[0-9a-f]+$/.test(e.name)) continue;
      removeTree(`${root}/volumes/${e.name}`);
      n++;
    }
  } catch {
    // No volumes directory yet, or unreadable: nothing to sweep.
  }
  return n;
}
