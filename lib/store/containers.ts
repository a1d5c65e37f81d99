/**
 * Running containers in the store's `containers` table, so that `rmi`
 * refuses an image a container uses. A row carries the pid of the trun
 * process that runs the container; a row whose process is gone (trun was
 * killed with SIGKILL) is stale and is dropped when next looked at, so a
 * crash never pins an image forever.
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
  ).run(row.id, row.name, row.imageId, Date.now(), JSON.stringify({ pid: row.pid }));
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
      pid = Number((JSON.parse(r.state) as { pid?: unknown }).pid) || 0;
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
