/**
 * `trun network create|ls|rm|prune|connect|disconnect` (`network inspect`
 * is in inspect.ts), Docker's network commands on the store's networks
 * (lib/store/networks.ts), with its flags, output and exit codes (1 for a
 * network error, as the daemon's). Plus the internal `network-holder`, the
 * process that keeps the shared network namespace (lib/network/holder.ts).
 */
import { type CommandDef, defineCommand, parseArgs, UsageError } from "./args.ts";
import { printError, printHelp, println } from "./output.ts";
import { type OutputFormat, renderItems } from "./format.ts";
import { formatFlag, messageOf } from "./_image_common.ts";
import { confirmPrune } from "./prune.ts";
import { keyValues, labelText } from "./volume.ts";
import { type ContainerRecord, openStore, type Store } from "../store/mod.ts";
import {
  containerLeases,
  createNetwork,
  findNetwork,
  leaseAddress,
  listLeases,
  listNetworks,
  networkError,
  type NetworkLease,
  type NetworkRecord,
  releaseLeases,
  removeNetwork,
  sweepLeases,
} from "../store/networks.ts";
import { NETWORK_NAME } from "../spec/network_mode.ts";
import { routesOf } from "../network/ipam.ts";

/** The grammar of `network create`. */
export const NETWORK_CREATE = defineCommand({
  name: "network create",
  usage: "[OPTIONS] NETWORK",
  summary: "Create a network",
  minArgs: 1,
  maxArgs: 1,
  flags: {
    driver: { short: "d", kind: "string", value: "DRIVER", help: "Driver (bridge)" },
    subnet: {
      kind: "string",
      value: "CIDR",
      help: "IPv4 subnet (a free /24 of 10.89.0.0/16 by default)",
    },
    gateway: {
      kind: "string",
      value: "IP",
      help: "IPv4 gateway (the subnet's first address by default)",
    },
    internal: { kind: "bool", help: "Restrict external access to the network" },
    label: { kind: "list", value: "KEY=VALUE", help: "Set metadata on a network" },
  },
});

/** The grammar of `network ls`. */
export const NETWORK_LS = defineCommand({
  name: "network ls",
  usage: "[OPTIONS]",
  summary: "List networks",
  maxArgs: 0,
  flags: {
    filter: {
      short: "f",
      kind: "list",
      value: "FILTER",
      help: "Filter output: name=, id=, driver=, label=KEY[=VALUE]",
    },
    format: {
      kind: "string",
      value: "FORMAT",
      help: "Format output: table, json, or a Go template such as '{{.Name}}'",
    },
    quiet: { short: "q", kind: "bool", help: "Only display network IDs" },
    "no-trunc": { kind: "bool", help: "Do not truncate the output" },
  },
});

/** The grammar of `network rm`. */
export const NETWORK_RM = defineCommand({
  name: "network rm",
  usage: "[OPTIONS] NETWORK [NETWORK...]",
  summary: "Remove one or more networks",
  minArgs: 1,
  flags: {
    force: {
      short: "f",
      kind: "bool",
      help: "No error for a missing network; remove the containers using it first (Podman's -f)",
    },
  },
});

/** The grammar of `network prune`. */
export const NETWORK_PRUNE = defineCommand({
  name: "network prune",
  usage: "[OPTIONS]",
  summary: "Remove all unused networks",
  maxArgs: 0,
  flags: {
    force: { short: "f", kind: "bool", help: "Do not prompt for confirmation" },
  },
});

/** The grammar of `network connect`. */
export const NETWORK_CONNECT = defineCommand({
  name: "network connect",
  usage: "[OPTIONS] NETWORK CONTAINER",
  summary: "Connect a container to a network",
  minArgs: 2,
  maxArgs: 2,
  flags: {
    alias: { kind: "list", value: "ALIAS", help: "Add network-scoped alias for the container" },
  },
});

/** The grammar of `network disconnect`. */
export const NETWORK_DISCONNECT = defineCommand({
  name: "network disconnect",
  usage: "[OPTIONS] NETWORK CONTAINER",
  summary: "Disconnect a container from a network",
  minArgs: 2,
  maxArgs: 2,
  flags: {
    force: { short: "f", kind: "bool", help: "Force the container to disconnect from a network" },
  },
});

/** The network `ref` names, or Docker's error. */
function mustFindNetwork(store: Store, ref: string): NetworkRecord {
  const n = findNetwork(store, ref);
  if (!n) throw networkError(`network ${ref} not found`);
  return n;
}

/** The container `ref` names, or Docker's error. */
function mustFindContainer(store: Store, ref: string): ContainerRecord {
  const rec = store.findRecord(ref);
  if (!rec) throw networkError(`No such container: ${ref}`);
  return rec;
}

/** The host's routed IPv4 subnets, which an automatic subnet avoids. */
function hostRoutes(): ReturnType<typeof routesOf> {
  try {
    return routesOf(Deno.readTextFileSync("/proc/net/route"));
  } catch {
    return [];
  }
}

/** Runs `trun network create`: prints the network's id. */
export function createCommand(argv: string[], name = NETWORK_CREATE.name): Promise<number> {
  const def = { ...NETWORK_CREATE, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const netName = p.args[0]!;
  if (!NETWORK_NAME.test(netName)) {
    throw networkError(
      `invalid network name "${netName}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`,
    );
  }
  const store = openStore(undefined, { repair: false });
  try {
    const n = createNetwork(store, {
      name: netName,
      ...(p.flags.driver !== undefined ? { driver: p.flags.driver } : {}),
      ...(p.flags.subnet !== undefined ? { subnet: p.flags.subnet } : {}),
      ...(p.flags.gateway !== undefined ? { gateway: p.flags.gateway } : {}),
      internal: p.flags.internal,
      labels: keyValues(def, p.flags.label, "label"),
    }, hostRoutes());
    println(n.id);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}

/** What `network ls --filter` selects: keys all apply, values of one key are alternatives. */
export interface NetworkFilters {
  /** `name=`: substrings of the name. */
  names: string[];
  /** `id=`: id prefixes. */
  ids: string[];
  /** `driver=`. */
  drivers: string[];
  /** `label=KEY[=VALUE]`, all of them. */
  labels: { key: string; value?: string }[];
}

/** Parses `network ls --filter` values. */
export function parseNetworkFilters(def: CommandDef, filters: readonly string[]): NetworkFilters {
  const out: NetworkFilters = { names: [], ids: [], drivers: [], labels: [] };
  for (const f of filters) {
    const eq = f.indexOf("=");
    if (eq <= 0) throw new UsageError(def, `bad format of filter "${f}": expected name=value`);
    const key = f.slice(0, eq);
    const value = f.slice(eq + 1);
    if (key === "name") out.names.push(value);
    else if (key === "id") out.ids.push(value);
    else if (key === "driver") out.drivers.push(value);
    else if (key === "label") {
      const e = value.indexOf("=");
      out.labels.push(
        e < 0 ? { key: value } : { key: value.slice(0, e), value: value.slice(e + 1) },
      );
    } else {
      throw new UsageError(def, `invalid filter "${f}": trun supports name=, id=, driver=, label=`);
    }
  }
  return out;
}

/** The networks `filters` select. */
export function selectNetworks(
  networks: readonly NetworkRecord[],
  filters: NetworkFilters,
): NetworkRecord[] {
  return networks.filter((n) =>
    (filters.names.length === 0 || filters.names.some((x) => n.name.includes(x))) &&
    (filters.ids.length === 0 || filters.ids.some((x) => n.id.startsWith(x))) &&
    (filters.drivers.length === 0 || filters.drivers.includes(n.driver)) &&
    filters.labels.every((l) =>
      Object.hasOwn(n.labels, l.key) && (l.value === undefined || n.labels[l.key] === l.value)
    )
  );
}

/** One line of `docker network ls --format json` (keys as Docker writes them). */
export function networkJson(n: NetworkRecord, noTrunc = false): Record<string, unknown> {
  return {
    CreatedAt: n.created,
    Driver: n.driver,
    ID: noTrunc ? n.id : n.id.slice(0, 12),
    IPv6: "false",
    Internal: String(n.internal),
    Labels: labelText(n.labels),
    Name: n.name,
    Scope: "local",
  };
}

/** The lines `trun network ls` prints. */
export function renderNetworks(
  networks: readonly NetworkRecord[],
  opts: { quiet: boolean; format: OutputFormat; noTrunc?: boolean },
): string[] {
  const id = (n: NetworkRecord) => opts.noTrunc ? n.id : n.id.slice(0, 12);
  if (opts.quiet) return networks.map(id);
  return renderItems(opts.format, networks, {
    headers: ["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
    row: (n) => [id(n), n.name, n.driver, "local"],
    json: (n) => networkJson(n, opts.noTrunc),
    labels: { ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE" },
  });
}

/** Runs `trun network ls`. */
export function lsCommand(argv: string[], name = NETWORK_LS.name): Promise<number> {
  const def = { ...NETWORK_LS, name };
  const p = parseArgs(def, argv);
  if (p.help) return Promise.resolve(printHelp(def));
  const format = formatFlag(def, p.flags.format);
  const filters = parseNetworkFilters(def, p.flags.filter);
  const store = openStore(undefined, { repair: false });
  try {
    const lines = renderNetworks(selectNetworks(listNetworks(store), filters), {
      quiet: p.flags.quiet,
      format,
      noTrunc: p.flags["no-trunc"],
    });
    for (const l of lines) println(l);
  } finally {
    store.close();
  }
  return Promise.resolve(0);
}

/** Docker's `docker network inspect` object of a network and its containers' leases. */
export function inspectNetwork(
  n: NetworkRecord,
  leases: readonly NetworkLease[],
  names: ReadonlyMap<string, string>,
): Record<string, unknown> {
  const prefix = n.subnet.slice(n.subnet.indexOf("/"));
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: "local",
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: "" },
    ConfigOnly: false,
    Containers: Object.fromEntries(leases.map((l) => [l.container, {
      Name: names.get(l.container) ?? "",
      EndpointID: "",
      MacAddress: l.mac,
      IPv4Address: `${l.ip}${prefix}`,
      IPv6Address: "",
    }])),
    Options: { "com.docker.network.bridge.name": n.bridge },
    Labels: n.labels,
  };
}

/** The containers on each network, by network name (what `rm` and `prune` check). */
function networkUsers(store: Store): Map<string, string[]> {
  sweepLeases(store);
  const users = new Map<string, string[]>();
  for (const l of listLeases(store)) {
    users.set(l.network, [...(users.get(l.network) ?? []), l.container]);
  }
  return users;
}

/** Removes a network's row and its bridge. */
async function dropNetwork(store: Store, n: NetworkRecord): Promise<void> {
  removeNetwork(store, n.name);
  const { removeBridge } = await import("../network/endpoints.ts");
  await removeBridge(n).catch(() => {
    // The holder went idle meanwhile: the bridge went with it.
  });
}

/**
 * Removes network `ref`, refusing one in use (`force`: its containers are
 * removed first, as Podman's `network rm -f`). Returns false when there is
 * no such network.
 */
export async function removeNetworkCommand(
  store: Store,
  ref: string,
  force: boolean,
): Promise<boolean> {
  const n = findNetwork(store, ref);
  if (!n) return false;
  const users = networkUsers(store).get(n.name) ?? [];
  if (users.length > 0) {
    if (!force) {
      throw networkError(
        `error while removing network: network ${n.name} id ${n.id} has active endpoints ` +
          `(${users.map((u) => u.slice(0, 12)).join(", ")}): remove or disconnect ${
            users.length === 1 ? "that container" : "those containers"
          } first, or use --force to remove ${users.length === 1 ? "it" : "them"} too`,
      );
    }
    const { removeContainer } = await import("../container/ops.ts");
    for (const id of users) {
      const rec = store.findRecord(id);
      if (rec) await removeContainer(store, rec, true, { volumes: true });
    }
  }
  await dropNetwork(store, n);
  return true;
}

/** Runs `trun network rm`: prints each name removed; exit 1 when any failed. */
export async function rmCommand(argv: string[], name = NETWORK_RM.name): Promise<number> {
  const def = { ...NETWORK_RM, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const store = openStore(undefined, { repair: false });
  let failed = false;
  try {
    for (const ref of p.args) {
      try {
        if (!await removeNetworkCommand(store, ref, p.flags.force) && !p.flags.force) {
          throw networkError(`network ${ref} not found`);
        }
        println(ref);
      } catch (e) {
        failed = true;
        printError(messageOf(e));
      }
    }
  } finally {
    store.close();
  }
  return failed ? 1 : 0;
}

/** Runs `trun network prune`: removes the networks no container is on. */
export async function pruneCommand(argv: string[], name = NETWORK_PRUNE.name): Promise<number> {
  const def = { ...NETWORK_PRUNE, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const warning =
    "WARNING! This will remove all custom networks not used by at least one container.";
  if (!p.flags.force && !await confirmPrune(def, warning)) return 0;
  const store = openStore(undefined, { repair: false });
  try {
    const users = networkUsers(store);
    const deleted: string[] = [];
    for (const n of listNetworks(store)) {
      if (users.has(n.name)) continue;
      await dropNetwork(store, n);
      deleted.push(n.name);
    }
    if (deleted.length > 0) println(["Deleted Networks:", ...deleted, ""].join("\n"));
  } finally {
    store.close();
  }
  return 0;
}

/** Runs `trun network connect`: a lease, the record, hosts files, and the interface when running. */
export async function connectCommand(argv: string[], name = NETWORK_CONNECT.name): Promise<number> {
  const def = { ...NETWORK_CONNECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const store = openStore(undefined, { repair: false });
  try {
    const n = mustFindNetwork(store, p.args[0]!);
    const rec = mustFindContainer(store, p.args[1]!);
    const existing = rec.network?.mode;
    if (existing !== undefined && containerLeases(store, rec.id).length === 0) {
      throw networkError(
        `container ${rec.name} is not on user-defined networks (its network is ${existing}): ` +
          "only such containers can be connected to more",
      );
    }
    if (existing === undefined) {
      throw networkError(
        `container ${rec.name} has the host's network: only containers created with ` +
          "--network NAME can be connected to more networks",
      );
    }
    const lease = leaseAddress(store, n.name, rec.id, p.flags.alias);
    const { recordNetworks, refreshHosts, wireRunning } = await import("../network/endpoints.ts");
    try {
      await wireRunning(store, rec, lease);
    } catch (e) {
      releaseLeases(store, rec.id, n.name);
      throw e;
    }
    const after = store.updateRecord(rec.id, (r) => ({
      ...r,
      network: {
        ...r.network!,
        networks: recordNetworks(containerLeases(store, rec.id), listNetworks(store)),
      },
    }));
    if (after) await followForwarder(store, rec, after);
    refreshHosts(store, [n.name]);
  } finally {
    store.close();
  }
  return 0;
}

// Moves a running container's port forwarder to its new first address.
async function followForwarder(
  store: Store,
  before: ContainerRecord,
  after: ContainerRecord,
): Promise<void> {
  const { followPortForwarder, withHelper } = await import("../container/network_helper.ts");
  const logPath = `${store.containerDir(after.id)}/userdata/network.log`;
  const helper = await followPortForwarder(before, after, logPath);
  if (helper !== "unchanged") store.updateRecord(after.id, (r) => withHelper(r, helper));
}

/** Runs `trun network disconnect`. */
export async function disconnectCommand(
  argv: string[],
  name = NETWORK_DISCONNECT.name,
): Promise<number> {
  const def = { ...NETWORK_DISCONNECT, name };
  const p = parseArgs(def, argv);
  if (p.help) return printHelp(def);
  const store = openStore(undefined, { repair: false });
  try {
    const n = mustFindNetwork(store, p.args[0]!);
    const rec = mustFindContainer(store, p.args[1]!);
    if (!containerLeases(store, rec.id).some((l) => l.network === n.name)) {
      throw networkError(`container ${rec.id.slice(0, 12)} is not connected to network ${n.name}`);
    }
    const { recordNetworks, refreshHosts, unwireRunning } = await import("../network/endpoints.ts");
    await unwireRunning(rec, n);
    releaseLeases(store, rec.id, n.name);
    const after = store.updateRecord(rec.id, (r) => ({
      ...r,
      network: {
        ...r.network!,
        networks: recordNetworks(containerLeases(store, rec.id), listNetworks(store)),
      },
    }));
    if (after) await followForwarder(store, rec, after);
    refreshHosts(store, [n.name], [rec.id]);
  } finally {
    store.close();
  }
  return 0;
}

/** The grammar of the internal `network-holder`. */
export const NETWORK_HOLDER = defineCommand({
  name: "network-holder",
  usage: "",
  summary: "(internal) keep the shared network namespace of user-defined networks",
  maxArgs: 0,
  flags: {},
});

/** Runs the internal `trun network-holder` (started by trun itself, never by users). */
export async function holderCommand(argv: string[]): Promise<number> {
  const p = parseArgs(NETWORK_HOLDER, argv);
  if (p.help) return printHelp(NETWORK_HOLDER);
  const { holderMain } = await import("../network/holder.ts");
  return await holderMain();
}

/** The grammar of the internal `network-forwarder`. */
export const NETWORK_FORWARDER = defineCommand({
  name: "network-forwarder",
  usage: "ID PLAN",
  summary: "(internal) forward a container's published ports on user-defined networks",
  minArgs: 2,
  maxArgs: 2,
  flags: {},
});

/** Runs the internal `trun network-forwarder` (started by trun itself, never by users). */
export async function forwarderCommand(argv: string[]): Promise<number> {
  const p = parseArgs(NETWORK_FORWARDER, argv);
  if (p.help) return printHelp(NETWORK_FORWARDER);
  const { forwarderMain } = await import("../network/forwarder.ts");
  return await forwarderMain(p.args[0]!, p.args[1]!);
}
