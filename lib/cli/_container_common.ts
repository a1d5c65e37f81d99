/** What the container commands share: finding a container by name or id. */
import type { ContainerRecord } from "../store/mod.ts";

/** The record `ref` names and its directory, or Docker's "No such container". */
export async function findContainer(
  ref: string,
): Promise<{ rec: ContainerRecord; dir: string }> {
  const { openStore } = await import("../store/mod.ts");
  const { mustFind } = await import("../container/ops.ts");
  const store = openStore(undefined, { repair: false });
  try {
    const rec = mustFind(store, ref);
    return { rec, dir: store.containerDir(rec.id) };
  } finally {
    store.close();
  }
}
