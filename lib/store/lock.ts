/**
 * Cross-process locks for the store: one empty file per lock name under
 * `<root>/locks/`, locked with flock(2) through `Deno.FsFile.lock()`.
 *
 * flock locks belong to an open file description, so two opens in the same
 * process exclude each other just as two processes do, and the kernel drops
 * a lock when its holder dies (a `kill -9` never leaves a stale lock).
 *
 * Lock files of items that are gone are deleted (`sweepFreeLocks`, and a
 * holder may drop its own with `unlinkHeldLock`), so `locks/` does not grow
 * with every image ever pulled. That is safe because every taker checks,
 * once it holds the lock, that the file it locked is still the one at the
 * path, and starts again if it is not: a process that opened the file just
 * before it was unlinked can never hold "the same" lock as one that
 * created the new file.
 *
 * Two kinds are used. Exclusive locks serialise work on one item (unpacking a
 * blob, downloading a blob). Shared "leases" mark an item as in use by a
 * running trun (a layer a pull has just ensured but not yet recorded): the
 * garbage collector only deletes an item after taking its lease exclusively
 * without waiting.
 */

const NAME = /^[a-z0-9][a-z0-9._-]{0,200}$/;

/** The lock file for `name`; throws on names that are not plain file names. */
export function lockPath(root: string, name: string): string {
  if (!NAME.test(name)) {
    throw new Error(
      `Invalid lock name "${name}": use lowercase letters, digits, ".", "_" and "-" (at most 201)`,
    );
  }
  return `${root}/locks/${name}.lock`;
}

function openLockFile(root: string, name: string): Deno.FsFile {
  const path = lockPath(root, name);
  try {
    return Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    Deno.mkdirSync(`${root}/locks`, { recursive: true, mode: 0o700 });
    return Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  }
}

/** Whether `file` (locked) is still the lock file at `path`, not one unlinked meanwhile. */
function stillThere(file: Deno.FsFile, path: string): boolean {
  try {
    const held = file.statSync();
    const now = Deno.lstatSync(path);
    return held.ino === now.ino && held.dev === now.dev;
  } catch {
    return false;
  }
}

/**
 * Opens lock `name` and takes it with `take` (which returns false when it
 * would have to wait and must not); starts again when the file was
 * unlinked in the meantime. Null when `take` declined.
 */
async function acquire(
  root: string,
  name: string,
  take: (file: Deno.FsFile) => Promise<boolean> | boolean,
): Promise<Deno.FsFile | null> {
  const path = lockPath(root, name);
  for (;;) {
    const file = openLockFile(root, name);
    let taken = false;
    try {
      taken = await take(file);
    } finally {
      if (!taken) file.close();
    }
    if (!taken) return null;
    if (stillThere(file, path)) return file;
    file.close();
  }
}

/** The same as `acquire`, for takers that never wait. */
function acquireSync(
  root: string,
  name: string,
  take: (file: Deno.FsFile) => boolean,
): Deno.FsFile | null {
  const path = lockPath(root, name);
  for (;;) {
    const file = openLockFile(root, name);
    if (!take(file)) {
      file.close();
      return null;
    }
    if (stillThere(file, path)) return file;
    file.close();
  }
}

/**
 * Runs `fn` while holding the exclusive lock `name`, waiting for other
 * holders (in this or other processes) first. Not re-entrant: taking the
 * same lock again inside `fn` waits forever.
 */
export async function withLock<T>(root: string, name: string, fn: () => Promise<T>): Promise<T> {
  const file = (await acquire(root, name, async (f) => {
    await f.lock(true);
    return true;
  }))!;
  try {
    return await fn();
  } finally {
    file.close();
  }
}

/** An exclusive lock taken without waiting, or null when someone holds it. Close to release. */
export function tryLock(root: string, name: string): Deno.FsFile | null {
  return acquireSync(root, name, (f) => f.tryLockSync(true));
}

/**
 * Takes the shared lock `name` and keeps it until the returned file is
 * closed (or the process ends): a lease on the item. Waits only while a
 * collector holds it exclusively, which is brief.
 */
export function takeLease(root: string, name: string): Deno.FsFile {
  return acquireSync(root, name, (f) => {
    f.lockSync(false);
    return true;
  })!;
}

/**
 * Deletes the file of lock `name`, which the caller holds (inside
 * `withLock`): for an item that is gone, whose lock nobody needs again.
 */
export function unlinkHeldLock(root: string, name: string): void {
  try {
    Deno.removeSync(lockPath(root, name));
  } catch {
    // Already gone.
  }
}

/**
 * Deletes every lock file nobody holds or waits on right now (an exclusive
 * lock taken without waiting, then the file unlinked while held). Leases
 * of running trun processes and locks in use stay. Returns how many went.
 */
export function sweepFreeLocks(root: string): number {
  let removed = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${root}/locks`)];
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!e.isFile || !e.name.endsWith(".lock")) continue;
    const name = e.name.slice(0, -".lock".length);
    if (!NAME.test(name)) continue;
    const file = tryLock(root, name);
    if (file === null) continue;
    try {
      Deno.removeSync(lockPath(root, name));
      removed++;
    } catch {
      // Gone meanwhile.
    } finally {
      file.close();
    }
  }
  return removed;
}
