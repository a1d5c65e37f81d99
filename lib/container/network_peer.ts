/**
 * `--network container:NAME|ID`: looks up the running container whose
 * network namespace another joins, checks that its user namespace (which
 * owns that network namespace, and which the joiner enters too) maps ids
 * as the joiner's would, and keeps the joiner's spec pointing at the
 * peer's current process across starts.
 *
 * When the peer stops, a joiner that runs keeps the namespace (its own
 * process holds it, as with Docker); starting the joiner again needs the
 * peer running.
 */
import type { IdMapping } from "../runtime/idmap.ts";
import { idMapMatches } from "../runtime/idmap.ts";
import type { EtcFileName, NetworkPeer } from "../spec/generate.ts";
import { peerNamespaces } from "../spec/generate.ts";
import type { Namespace } from "../spec/types.ts";
import { type ContainerRecord, openStore, type Store } from "../store/mod.ts";
import { containerPaths } from "./detached.ts";
import { containerStatus } from "./status.ts";

/** The record's mode when it joins container `id`. */
export function joinedMode(id: string): string {
  return `container:${id}`;
}

/** The id of the container `rec` joins the network of, if it does. */
export function joinedContainer(rec: ContainerRecord): string | undefined {
  const mode = rec.network?.mode;
  return mode?.startsWith("container:") ? mode.slice("container:".length) : undefined;
}

function fail(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 125 });
}

/** A uid_map text on one line, for messages. */
function mapLines(text: string): string {
  return text.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" ")).join(", ");
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The running container `ref` names, as a `NetworkPeer` for a joiner
 * with mapping `mapping` (unchecked when absent: a joiner starting again
 * was checked when it was created, and a container's mapping stays).
 * Throws Docker's errors: no such container, not running; and trun's when
 * the user namespaces differ.
 */
export function lookUpNetworkPeer(
  store: Store,
  ref: string,
  mapping: IdMapping | undefined,
  proc = "/proc",
): NetworkPeer {
  const rec = store.findRecord(ref);
  if (!rec) throw fail(`No such container: ${ref}`);
  if (containerStatus(rec, proc) !== "running") {
    throw fail(`cannot join network of a non running container: ${ref}`);
  }
  const pid = rec.pid;
  for (const kind of mapping ? ["uid", "gid"] as const : []) {
    const text = readText(`${proc}/${pid}/${kind}_map`);
    if (text === undefined) throw fail(`cannot join network of container ${ref}: it is gone`);
    if (!idMapMatches(text, mapping!, kind)) {
      throw fail(
        `cannot join network of container ${ref}: its user namespace maps ${kind}s differently ` +
          `(${mapLines(text)}) from this container's; its network ` +
          "namespace belongs to that user namespace, which this container would enter: " +
          "use the same --userns for both",
      );
    }
  }
  const dir = store.containerDir(rec.id);
  const spec = JSON.parse(readText(containerPaths(dir).spec) ?? "{}") as {
    hostname?: string;
    domainname?: string;
    mounts?: { destination?: string; type?: string; source?: string }[];
  };
  // The peer's files are where its own spec binds them from (its own
  // directory, or a container it joined in turn).
  const files: Partial<Record<EtcFileName, string>> = {};
  for (const name of ["hostname", "hosts", "resolv.conf"] as const) {
    const m = spec.mounts?.find((m) => m.destination === `/etc/${name}` && m.type === "bind");
    if (m?.source) files[name] = m.source;
  }
  return {
    id: rec.id,
    pid,
    userns: mapping?.mode !== "host",
    hostname: spec.hostname ?? rec.id.slice(0, 12),
    ...(spec.domainname ? { domainname: spec.domainname } : {}),
    files,
  };
}

/**
 * Before container `rec` (directory `dir`) starts again: points its spec
 * at the joined container's current process, which must run (Docker
 * checks at start too). Nothing to do for other containers.
 */
export function refreshNetworkPeer(store: Store, rec: ContainerRecord, dir: string): void {
  const target = joinedContainer(rec);
  if (target === undefined) return;
  const peer = lookUpNetworkPeer(store, target, undefined);
  const path = containerPaths(dir).spec;
  const spec = JSON.parse(Deno.readTextFileSync(path)) as {
    linux?: { namespaces?: Namespace[] };
  };
  const joined = peerNamespaces(peer);
  const namespaces = (spec.linux?.namespaces ?? []).map((n) =>
    joined.find((j) => j.type === n.type && n.path !== undefined) ?? n
  );
  spec.linux = { ...spec.linux, namespaces };
  Deno.writeTextFileSync(`${path}.tmp`, JSON.stringify(spec));
  Deno.renameSync(`${path}.tmp`, path);
}

/**
 * `refreshNetworkPeer` with a store of its own, for the starters (start,
 * and the monitors' restarts): undefined when the container may start,
 * else why not.
 */
export function networkPeerBlocks(rec: ContainerRecord, dir: string): string | undefined {
  if (joinedContainer(rec) === undefined) return undefined;
  const store = openStore(undefined, { repair: false });
  try {
    refreshNetworkPeer(store, rec, dir);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    store.close();
  }
}
