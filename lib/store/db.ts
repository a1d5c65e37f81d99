/**
 * The store's metadata database, `trun.db` (node:sqlite): its schema, the
 * migrations that build it, and the connection settings that let several
 * trun processes share it (WAL journal, a busy timeout instead of SQLITE_BUSY
 * errors, synchronous=FULL so a committed row survives a power cut).
 *
 * The schema version is SQLite's `user_version`. Migration N takes the
 * database from version N-1 to N inside one `BEGIN IMMEDIATE` transaction,
 * so two processes opening a new store at once migrate it once, and a crash
 * mid-migration leaves the previous version intact.
 */

import { DatabaseSync } from "node:sqlite";

/** The handles every store module works with. */
export interface StoreContext {
  /** The store root directory. */
  readonly root: string;
  /** The open metadata database. */
  readonly db: DatabaseSync;
  /** Takes (once per process) a shared lease on `name`, held until the store is closed. */
  lease(name: string): void;
  /** Gives up this process's lease on `name`, before collecting the item it guards. */
  dropLease(name: string): void;
}

/** The migrations, in order; index i takes the schema to version i+1. Append only. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL
  );
  -- An unpacked layer: layers/<chain id hex>/.
  CREATE TABLE layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,
    blob_digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    unpacked_size INTEGER NOT NULL,
    -- How many image_layers rows point here (kept in the same transactions).
    refcount INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
  );
  -- What each compressed blob unpacks to, learnt on first unpack.
  CREATE TABLE blob_diffs (
    blob_digest TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    tar_size INTEGER NOT NULL
  );
  CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    created TEXT,
    added INTEGER NOT NULL,
    size INTEGER NOT NULL,
    config TEXT NOT NULL
  );
  CREATE TABLE manifests (
    digest TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    media_type TEXT NOT NULL,
    bytes BLOB NOT NULL
  );
  CREATE INDEX manifests_image ON manifests(image_id);
  -- Blobs a manifest needs (config and layers), for garbage collection.
  CREATE TABLE manifest_blobs (
    manifest_digest TEXT NOT NULL REFERENCES manifests(digest) ON DELETE CASCADE,
    blob_digest TEXT NOT NULL,
    PRIMARY KEY (manifest_digest, blob_digest)
  );
  CREATE INDEX manifest_blobs_blob ON manifest_blobs(blob_digest);
  -- One row per reference: name:tag, or name@digest for a pull by digest.
  CREATE TABLE tags (
    reference TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    created INTEGER NOT NULL
  );
  CREATE INDEX tags_image ON tags(image_id);
  -- No foreign key to layers: a layer row may be dropped by repair (its
  -- directory vanished) and re-made by the next pull while images keep it.
  CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
  );
  CREATE INDEX image_layers_chain ON image_layers(chain_id);
  -- Reserved for the runtime; removeImage() consults it.
  CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX containers_image ON containers(image_id);
  `,
  `
  -- A named or anonymous volume: its data in volumes/<name>/_data. Labels
  -- and driver options are JSON objects; created is RFC 3339.
  CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL,
    created TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    options TEXT NOT NULL DEFAULT '{}'
  );
  `,
  `
  -- trun build's cache: a step's key (its parent image, instruction and
  -- inputs) to the image it made. Rows whose image is gone are ignored.
  CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created INTEGER NOT NULL
  );
  CREATE INDEX build_cache_image ON build_cache(image_id);
  `,
  `
  -- A user-defined network (lib/store/networks.ts); labels are JSON.
  CREATE TABLE networks (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,
    created TEXT NOT NULL,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    internal INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    bridge TEXT NOT NULL
  );
  -- A container's address on a network; aliases are a JSON array.
  CREATE TABLE network_leases (
    network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    container TEXT NOT NULL,
    ip TEXT NOT NULL,
    mac TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]',
    ifname TEXT NOT NULL,
    PRIMARY KEY (network, container),
    UNIQUE (network, ip)
  );
  CREATE INDEX network_leases_container ON network_leases(container);
  `,
];

/** The schema version this trun writes. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/** Opens (creating and migrating if needed) the database at `path`. */
export function openDb(path: string): DatabaseSync {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (err) {
    throw new Error(`Cannot open the store database "${path}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    // busy_timeout first: switching to WAL itself needs a lock another
    // process may hold.
    db.exec("PRAGMA busy_timeout = 30000");
    setWal(db);
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    migrate(db, path);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Switches the database to WAL. Two processes opening a new store at once
 * both ask; the loser can get "database is locked" at once, without the
 * busy handler, so it asks again for a while (seen in the concurrent pull
 * test, about once in ten CI runs).
 */
function setWal(db: DatabaseSync): void {
  for (let i = 0;; i++) {
    try {
      db.exec("PRAGMA journal_mode = WAL");
      return;
    } catch (e) {
      if (i >= 200 || !String(e).includes("database is locked")) throw e;
      const until = Date.now() + 25;
      while (Date.now() < until) {
        // A short busy wait: openDb is synchronous, and this is rare.
      }
    }
  }
}

function userVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number };
  return row.user_version;
}

function migrate(db: DatabaseSync, path: string): void {
  if (userVersion(db) === SCHEMA_VERSION) return;
  transaction(db, () => {
    // Read again under the write lock: another process may have migrated.
    const version = userVersion(db);
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `The store database "${path}" has schema version ${version}, newer than this trun understands (${SCHEMA_VERSION}): upgrade trun`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]!);
      db.exec(`PRAGMA user_version = ${v + 1}`);
    }
  });
}

/**
 * Runs `fn` in a write transaction (`BEGIN IMMEDIATE`, so the write lock is
 * taken up front and a busy database waits rather than failing mid-way);
 * rolls back if it throws.
 */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const out = fn();
    db.exec("COMMIT");
    return out;
  } catch (err) {
    try {
      db.exec("ROLLBACK");
    } catch {
      // The original error is the one to report.
    }
    throw err;
  }
}
