/**
 * Containers in the store's `containers` table. Two kinds of row:
 *
 * - a `trun run` in the foreground: the row carries the pid of the trun
 *   process that runs it, so that `rmi` refuses its image meanwhile; a row
 *   whose process is gone (trun was killed with SIGKILL) is stale and is
 *   dropped when next looked at, so a crash never pins an image forever;
 * - a container that outlives its command (`run -d`, `create`): a
 *   `ContainerRecord`, kept until `rm`, which pins its image like Docker's.
 */
import type { StoreContext } from "./db.ts";

/** A container using an image. */
export interface ContainerRow {
  /** Container id (64 hex). */
  id: string;
  /** `--name`, if given. */
  name: string | null;
  /** The image's config digest. */
  imageId: string;
  /** pid of the trun process that runs it. */
  pid: number;
  /** Volumes it mounts (`volume rm` refuses them while it runs). */
  volumes?: string[];
}

/** A container that outlives its command (Docker's lifecycle), as the store keeps it. */
export interface ContainerRecord {
  /** Marks the row as a record (foreground rows carry only a pid). */
  kind: "container";
  /** 64 hex digits. */
  id: string;
  /** `--name`, or a generated adjective_surname. */
  name: string;
  /** The image's config digest, or "" for `--rootfs`. */
  imageId: string;
  /** The image as the user named it, or the rootfs directory. */
  image: string;
  /** Creation time (RFC 3339). */
  created: string;
  /** The process's argv. */
  command: string[];
  /** `-l/--label`. */
  labels: Record<string, string>;
  /** `-t`. */
  tty: boolean;
  /** `-i`: the container's stdin is kept open for attach clients. */
  stdin?: boolean;
  /**
   * With `stdin`: the first attach client's EOF closes it (`run -i` in the
   * foreground, Docker's StdinOnce); else it stays open (`run -d -i`).
   */
  stdinOnce?: boolean;
  /** `--rm`. */
  autoRemove: boolean;
  /** Signal `stop` sends first (`--stop-signal`, the image's StopSignal, else SIGTERM). */
  stopSignal: string;
  /** Seconds `stop` waits before SIGKILL. */
  stopTimeout: number;
  /** The container's first process (0 before it starts). */
  pid: number;
  /** Its start time (/proc/PID/stat field 22), against pid reuse. */
  startTime: string;
  /** Which monitor runs beside it: trun's own, or Podman's conmon. */
  monitor?: "trun" | "conmon";
  /** The monitor process beside it (0 when none). */
  monitorPid: number;
  /** The monitor's start time. */
  monitorStartTime: string;
  /** The last state written: created, running, exited (or removing, during rm). */
  state: "created" | "running" | "exited" | "removing";
  /** When it last started (RFC 3339). */
  startedAt?: string;
  /** When it last exited (RFC 3339). */
  finishedAt?: string;
  /** Its exit status (Docker's: the code, or 128 + signal). */
  exitCode?: number;
  /** Why it could not start, when it could not. */
  error?: string;
  /** `--restart`. */
  restartPolicy?: { name: "no" | "on-failure" | "always" | "unless-stopped"; maxRetries: number };
  /** How many times the monitor restarted it. */
  restartCount?: number;
  /** `trun stop` stopped it: no restart policy applies until it is started again. */
  stoppedByUser?: boolean;
  /** The volumes it mounts; the anonymous ones go with it on `rm -v` and `--rm`. */
  volumes?: ContainerVolume[];
  /** Its mount flags as given (inspect's HostConfig.Binds, Mounts and Tmpfs). */
  mountFlags?: MountFlags;
  /** Its network: the mode, published ports, the helper beside it (absent: the host's, before networks). */
  network?: ContainerNetwork;
  /** Its own cgroup v2 directory, when it was placed in one (absent: derived from its process). */
  cgroup?: string;
}

/** A container's endpoint on a user-defined network. */
export interface NetworkEndpoint {
  /** Its IPv4 address. */
  ip: string;
  /** Its names there besides its own (`--network-alias`). */
  aliases: string[];
  /** Its interface's MAC address. */
  mac?: string;
  /** The network's gateway. */
  gateway?: string;
  /** The subnet's prefix length. */
  prefixLen?: number;
  /** The network's id. */
  networkId?: string;
}

/** A published port: host address and port to container port. */
export interface PortBinding {
  /** The host address ("" = every address). */
  hostIp: string;
  /** The host port. */
  hostPort: number;
  /** The container port. */
  containerPort: number;
  /** The protocol. */
  protocol: "tcp" | "udp";
}

/** A container's network, as the record keeps it (plain JSON). */
export interface ContainerNetwork {
  /**
   * The mode as `--network` spells it, `private` already resolved (`pasta`,
   * `slirp4netns:…`); `container:<full id>` when joined; for user-defined
   * networks their names.
   */
  mode: string;
  /** `--dns`, `--dns-search`, `--dns-option` and `--add-host` as given (inspect's HostConfig). */
  names?: { dns?: string[]; dnsSearch?: string[]; dnsOptions?: string[]; extraHosts?: string[] };
  /** Published ports (`-p`, `-P`), host ports already chosen. */
  ports?: PortBinding[];
  /** Ports the container exposes (the image's ExposedPorts and `--expose`, `80/tcp`). */
  exposed?: string[];
  /**
   * The helper process of the current run: pasta or slirp4netns (private
   * networks), or the forwarder of published ports (user-defined networks).
   */
  helper?: { kind: "pasta" | "slirp4netns" | "forwarder"; pid: number; startTime?: number };
  /** Its endpoint on each user-defined network, by network name. */
  networks?: Record<string, NetworkEndpoint>;
}

/** A volume a container mounts. */
export interface ContainerVolume {
  /** The volume's name. */
  name: string;
  /** Where it is mounted in the container. */
  destination: string;
  /** Made for this container alone (`-v /path`, `--mount` without a source). */
  anonymous: boolean;
}

/** The mount flags of `run`/`create` as the user gave them. */
export interface MountFlags {
  /** `-v/--volume`. */
  volume: string[];
  /** `--mount`. */
  mount: string[];
  /** `--tmpfs`. */
  tmpfs: string[];
}

/** Records a container that outlives its command; fails on a name already in use. */
export function addRecord(ctx: StoreContext, rec: ContainerRecord): void {
  try {
    ctx.db.prepare(
      "INSERT INTO containers (id, name, image_id, created, state) VALUES (?, ?, ?, ?, ?)",
    ).run(rec.id, rec.name, rec.imageId, Date.parse(rec.created), JSON.stringify(rec));
  } catch (e) {
    if (String(e).includes("UNIQUE") && String(e).includes("name")) {
      throw new Error(
        `the container name "${rec.name}" is already in use; remove that container or choose another name`,
      );
    }
    throw e;
  }
}

/**
 * Replaces a record's stored state with `fn` of it (in one transaction);
 * returns the new one. When `fn` returns the record it was given, nothing
 * is written (no commit, so no fsync: about 7 ms on a loop ext4).
 */
export function updateRecord(
  ctx: StoreContext,
  id: string,
  fn: (rec: ContainerRecord) => ContainerRecord,
): ContainerRecord | undefined {
  ctx.db.exec("BEGIN IMMEDIATE");
  try {
    const row = ctx.db.prepare("SELECT state FROM containers WHERE id = ?").get(id) as
      | { state: string }
      | undefined;
    const rec = row ? parseRecord(row.state) : undefined;
    if (!rec) {
      ctx.db.exec("ROLLBACK");
      return undefined;
    }
    const next = fn(rec);
    if (next === rec) {
      ctx.db.exec("ROLLBACK");
      return rec;
    }
    ctx.db.prepare("UPDATE containers SET state = ?, name = ? WHERE id = ?").run(
      JSON.stringify(next),
      next.name,
      id,
    );
    ctx.db.exec("COMMIT");
    return next;
  } catch (e) {
    ctx.db.exec("ROLLBACK");
    throw e;
  }
}

function parseRecord(state: string): ContainerRecord | undefined {
  try {
    const v = JSON.parse(state) as { kind?: unknown };
    return v.kind === "container" ? v as ContainerRecord : undefined;
  } catch {
    return undefined;
  }
}

/** Every container record, newest first. */
export function listRecords(ctx: StoreContext): ContainerRecord[] {
  const rows = ctx.db.prepare("SELECT state FROM containers ORDER BY created DESC").all() as {
    state: string;
  }[];
  return rows.flatMap((r) => {
    const rec = parseRecord(r.state);
    return rec ? [rec] : [];
  });
}

/**
 * The record `ref` names: a full id, a name, or an unambiguous id prefix
 * (Docker's lookup order). Undefined when none; an error when a prefix is
 * ambiguous.
 */
export function findRecord(ctx: StoreContext, ref: string): ContainerRecord | undefined {
  const all = listRecords(ctx);
  const exact = all.find((r) => r.id === ref) ?? all.find((r) => r.name === ref);
  if (exact) return exact;
  if (!/^[0-9a-f]+$/.test(ref)) return undefined;
  const matches = all.filter((r) => r.id.startsWith(ref));
  if (matches.length > 1) {
    throw new Error(`multiple containers match "${ref}": give more of the id`);
  }
  return matches[0];
}

/** Whether a process exists (signal 0 semantics, through /proc). */
export function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Records that container `id` of image `imageId` runs under trun process `pid`. */
export function addContainer(ctx: StoreContext, row: ContainerRow): void {
  ctx.db.prepare(
    "INSERT INTO containers (id, name, image_id, created, state) VALUES (?, ?, ?, ?, ?)",
  ).run(
    row.id,
    row.name,
    row.imageId,
    Date.now(),
    JSON.stringify({ pid: row.pid, ...(row.volumes?.length ? { volumes: row.volumes } : {}) }),
  );
}

/** Forgets container `id`. */
export function removeContainer(ctx: StoreContext, id: string): void {
  ctx.db.prepare("DELETE FROM containers WHERE id = ?").run(id);
}

/** The live containers of image `imageId` (all images when undefined); stale rows are deleted. */
export function liveContainers(ctx: StoreContext, imageId?: string): ContainerRow[] {
  const rows =
    (imageId === undefined
      ? ctx.db.prepare("SELECT id, name, image_id, state FROM containers").all()
      : ctx.db.prepare("SELECT id, name, image_id, state FROM containers WHERE image_id = ?").all(
        imageId,
      )) as {
        id: string;
        name: string | null;
        image_id: string;
        state: string;
      }[];
  const live: ContainerRow[] = [];
  for (const r of rows) {
    let pid = 0;
    try {
      const state = JSON.parse(r.state) as { pid?: unknown; kind?: unknown };
      if (state.kind === "container") {
        // A record pins its image until `rm`, running or not, as Docker's.
        live.push({ id: r.id, name: r.name, imageId: r.image_id, pid: Number(state.pid) || 0 });
        continue;
      }
      pid = Number(state.pid) || 0;
    } catch {
      // A row without a readable pid cannot be checked: keep it.
      live.push({ id: r.id, name: r.name, imageId: r.image_id, pid: 0 });
      continue;
    }
    if (pid > 0 && !processAlive(pid)) removeContainer(ctx, r.id);
    else live.push({ id: r.id, name: r.name, imageId: r.image_id, pid });
  }
  return live;
}
