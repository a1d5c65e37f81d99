/**
 * A container's volumes before it starts: the mount flags of `run`/
 * `create` (parsed in lib/spec/mounts.ts) checked against the host and the
 * store. Named volumes are created when missing and anonymous ones made;
 * each gets its data source for the spec; an empty volume receives the
 * image's content at its path (Docker's copy-up); a `--mount type=bind`
 * source must exist while a `-v` one is made, as with Docker.
 *
 * Rootless with subordinate ids the copy-up runs in the storage user
 * namespace (`trun volume-copyup`), so the copied files keep the image's
 * owners; it is spawned only when the image has something at the path
 * other than an empty directory owned by the container's root.
 */
import type { IdMapping } from "../runtime/idmap.ts";
import { copyDirOut, mergedDirOwners } from "../runtime/rootfs_files.ts";
import { runTrunForStorage, storageUsernsMapping } from "../runtime/userns_exec.ts";
import { type MountFlagValues, mountRequests, type VolumeSource } from "../spec/mounts.ts";
import { type ContainerVolume, type Store, volumeBacking } from "../store/mod.ts";

/** What {@link prepareVolumes} made ready. */
export interface PreparedVolumes {
  /** The data source of each volume mount, by container path (for `generateSpec`). */
  sources: Record<string, VolumeSource>;
  /** The volumes mounted (for the container's record). */
  volumes: ContainerVolume[];
}

/** An error of `run`/`create` (Docker's exit status 125). */
function runError(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 125 });
}

/**
 * Whether `dir` has no entries (a missing directory counts as empty). One
 * we cannot read (rootless: a copy-up or a container gave it to another id
 * with mode 0700) has been used: it counts as not empty.
 */
function isEmptyDir(dir: string): boolean {
  try {
    for (const _ of Deno.readDirSync(dir)) return false;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return true;
    if (e instanceof Deno.errors.PermissionDenied) return false;
    throw e;
  }
  return true;
}

/**
 * Checks the bind sources (`--mount` ones must exist, `-v` ones are made),
 * creates the volumes the flags name (anonymous ones fresh), and copies
 * the image's content (the root made of `layers`, top first) into each
 * empty volume unless `nocopy`. On failure, the anonymous volumes it made
 * are removed again.
 */
export async function prepareVolumes(
  store: Store,
  flags: MountFlagValues,
  layers: readonly string[],
  mapping: IdMapping,
): Promise<PreparedVolumes> {
  const requests = mountRequests(flags);
  const out: PreparedVolumes = { sources: {}, volumes: [] };
  const copies: { destination: string; data: string }[] = [];
  const made: string[] = [];
  try {
    for (const r of requests) {
      if (r.type === "bind") {
        prepareBindSource(r.source, r.createSource);
        continue;
      }
      if (r.type !== "volume") continue;
      const { volume, created } = store.createVolume({
        ...(r.name !== undefined ? { name: r.name } : {}),
        ...(r.driver !== undefined ? { driver: r.driver } : {}),
        labels: r.labels,
        options: r.driverOptions,
        anonymous: r.name === undefined,
      });
      out.volumes.push({
        name: volume.name,
        destination: r.destination,
        anonymous: r.name === undefined,
      });
      if (created && r.name === undefined) made.push(volume.name);
      const backing = volumeBacking(volume, store.volumePath(volume.name));
      if (backing.kind === "tmpfs") {
        out.sources[r.destination] = { kind: "tmpfs", name: volume.name, options: backing.options };
        continue;
      }
      if (backing.path === store.volumePath(volume.name)) store.ensureVolumeDir(volume.name);
      else if (!isDirectory(backing.path)) {
        throw runError(
          `mounting volume "${volume.name}": its device "${backing.path}" is not a directory`,
        );
      }
      out.sources[r.destination] = {
        kind: "dir",
        name: volume.name,
        path: backing.path,
        ...(backing.readOnly ? { readOnly: true } : {}),
      };
      if (!r.noCopy && isEmptyDir(backing.path)) {
        copies.push({ destination: r.destination, data: backing.path });
      }
    }
    await copyUp(layers, copies, mapping);
  } catch (e) {
    for (const name of made) store.removeVolume(name);
    throw e;
  }
  return out;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** A bind source: `-v` makes a missing directory (Docker's), `--mount` refuses it. */
function prepareBindSource(source: string, create: boolean): void {
  try {
    Deno.statSync(source);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw runError(`bind source "${source}": ${(e as Error).message}`);
    }
  }
  if (!create) {
    throw runError(
      `invalid mount config for type "bind": bind source path does not exist: ${source}`,
    );
  }
  try {
    Deno.mkdirSync(source, { recursive: true, mode: 0o755 });
  } catch (e) {
    throw runError(`creating the bind source "${source}": ${(e as Error).message}`);
  }
}

/**
 * Docker's copy-up for each empty volume: the image's directory at the
 * mount path, with its content, owners and mode. Done in this process when
 * it can give the files their owners: as root, without subordinate ids
 * (everything belongs to the caller), or when everything there belongs to
 * the container's root (the caller); otherwise in the storage user
 * namespace.
 */
async function copyUp(
  layers: readonly string[],
  copies: readonly { destination: string; data: string }[],
  mapping: IdMapping,
): Promise<void> {
  const helper = mapping.mode === "subordinate" && storageUsernsMapping() !== null;
  const self = `${Deno.uid()}:${Deno.gid()}`;
  for (const c of copies) {
    let owners: Set<string> | null;
    try {
      owners = mergedDirOwners(layers, c.destination);
    } catch (e) {
      // A directory of another id (mode 0700): the helper can read it.
      if (!helper || !(e instanceof Deno.errors.PermissionDenied)) throw e;
      owners = new Set(["unreadable"]);
    }
    if (owners === null) continue;
    if (!helper || [...owners].every((o) => o === self)) {
      copyDirOut(layers, c.destination, c.data);
      continue;
    }
    const args = ["volume-copyup", ...layers.flatMap((l) => ["--layer", l]), c.destination, c.data];
    const code = await runTrunForStorage(args, { stdoutToStderr: true });
    if (code !== 0) {
      throw runError(
        `copying the image's "${c.destination}" into its volume "${c.data}" failed (see above)`,
      );
    }
  }
}

/**
 * Removes the volumes `names` that no container uses any more (a removed
 * container's anonymous volumes: `rm -v`, `--rm`); returns those removed.
 * Run where files of subordinate ids can be deleted.
 */
export function removeUnusedVolumes(store: Store, names: readonly string[]): string[] {
  if (names.length === 0) return [];
  const users = store.volumeUsers();
  return names.filter((n) => !users.has(n) && store.removeVolume(n));
}
