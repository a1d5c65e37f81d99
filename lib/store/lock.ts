/**
 * Cross-process locks for the store: one empty file per lock name under
 * `<root>/locks/`, locked with flock(2) through `Deno.FsFile.lock()`.
 *
 * flock locks belong to an open file description, so two opens in the same
 * process exclude each other just as two processes do, and the kernel drops
 * a lock when its holder dies (a `kill -9` never leaves a stale lock). Lock
 * files are never deleted: unlinking one while another process is about to
 * lock it would let two holders lock different inodes.
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

/**
 * Runs `fn` while holding the exclusive lock `name`, waiting for other
 * holders (in this or other processes) first. Not re-entrant: taking the
 * same lock again inside `fn` waits forever.
 */
export async function withLock<T>(root: string, name: string, fn: () => Promise<T>): Promise<T> {
  const file = openLockFile(root, name);
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close();
  }
}

/** An exclusive lock taken without waiting, or null when someone holds it. Close to release. */
export function tryLock(root: string, name: string): Deno.FsFile | null {
  const file = openLockFile(root, name);
  if (file.tryLockSync(true)) return file;
  file.close();
  return null;
}

/**
 * Takes the shared lock `name` and keeps it until the returned file is
 * closed (or the process ends): a lease on the item. Waits only while a
 * collector holds it exclusively, which is brief.
 */
export function takeLease(root: string, name: string): Deno.FsFile {
  const file = openLockFile(root, name);
  file.lockSync(false);
  return file;
}
