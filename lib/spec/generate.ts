/**
 * Spec generation: image config + run options + host facts → an OCI
 * runtime-spec `config.json`, the way Podman's specgen builds one. Pure:
 * every input is an argument (host facts are gathered once, elsewhere), so
 * the whole decision is unit-tested by reading the document it returns.
 *
 * Besides the spec it returns the small files the container gets at
 * /etc/hostname, /etc/hosts and /etc/resolv.conf; the executor writes them
 * where the spec's bind mounts expect them and removes them afterwards.
 */
import { resolveCommand, resolveWorkdir } from "./command.ts";
import { buildEnvironment, type EnvFile } from "./env.ts";
import type { IdMapping, IdRange } from "../runtime/idmap.ts";
import { resolveUser } from "./user.ts";
import { mountRequests, ociMounts, type VolumeSource } from "./mounts.ts";
import { MASKED_PATHS, READONLY_PATHS, standardMounts } from "./defaults.ts";
import { capabilityList, capabilitySets } from "./capabilities.ts";
import { type DeviceRequest, deviceSpec } from "./devices.ts";
import { maskedAndReadonlyPaths } from "./security_opt.ts";
import { parseSysctls } from "./sysctl.ts";
import { parseUlimits } from "./ulimit.ts";
import {
  type IdMappingEntry,
  type Namespace,
  OCI_VERSION,
  type Resources,
  type Seccomp,
  type Spec,
} from "./types.ts";
import { DEFAULT_SECCOMP_PROFILE, resolveSeccompProfile } from "./seccomp_profile.ts";
import { parseDockerSeccompProfile } from "./seccomp_docker.ts";
import type { NetworkMode } from "./network_mode.ts";
import { etcFileContents, type EtcFileName } from "./etc_files.ts";

export type { EtcFileName } from "./etc_files.ts";

/** The parts of an image config that shape the process (absent for `--rootfs`). */
export interface ImageProcessConfig {
  /** `Env`. */
  env?: string[];
  /** `Cmd`. */
  cmd?: string[];
  /** `Entrypoint`. */
  entrypoint?: string[];
  /** `WorkingDir`. */
  workingDir?: string;
  /** `User`. */
  user?: string;
  /** `StopSignal` (what `stop` sends first unless `--stop-signal` says otherwise). */
  stopSignal?: string;
  /** `ExposedPorts`' keys (`80/tcp`), for `-P`. */
  exposedPorts?: string[];
}

/** What the image's root filesystem says, read once before generation. */
export interface RootfsFacts {
  /** `/etc/passwd` text, or null. */
  passwd: string | null;
  /** `/etc/group` text, or null. */
  group: string | null;
  /** The /etc files the image can take a bind mount at (a regular file there, or none in a writable /etc). */
  etcBindable: Readonly<Record<EtcFileName, boolean>>;
}

/** Facts about the host, gathered once. */
export interface HostFacts {
  /** The user namespace mapping (mode `host` when root runs without one). */
  idMapping: IdMapping;
  /** trun's environment (for `-e NAME` without a value). */
  env: Readonly<Record<string, string | undefined>>;
  /** The host's /etc/hosts, or null. */
  hosts: string | null;
  /** The host's /etc/resolv.conf, or null. */
  resolvConf: string | null;
  /** The capabilities trun may pass on (its bounding set); absent: all. */
  capabilities?: readonly string[];
  /** The architecture in Go's names (`amd64`); absent: amd64, the one trun starts containers on. */
  arch?: string;
  /**
   * The parent of the container's own cgroup (a cgroup v2 hierarchy path,
   * `<delegated>/trun`); absent: it stays in its monitor's cgroup.
   */
  cgroupParent?: string;
}

/** What the user asked for on the command line, already read from files. */
export interface RunOptions {
  /** Arguments after the image (the command). */
  args: string[];
  /** `--entrypoint`. */
  entrypoint?: string;
  /** `--hostname`. */
  hostname?: string;
  /** `--domainname`. */
  domainname?: string;
  /** `-e`. */
  env: string[];
  /** `--env-file` contents. */
  envFiles: EnvFile[];
  /** `-w`. */
  workdir?: string;
  /** `-u`. */
  user?: string;
  /** `--group-add`. */
  groupAdd: string[];
  /** `-v`: binds, named volumes, anonymous volumes (lib/spec/mounts.ts). */
  volumes: string[];
  /** `--mount`. */
  mounts?: string[];
  /** `--tmpfs`. */
  tmpfs?: string[];
  /** `--read-only`. */
  readOnly: boolean;
  /** `--network`, resolved (`private` becomes pasta, slirp4netns or none at create time). */
  network: NetworkMode;
  /** `--add-host NAME:IP|host-gateway` values (checked by lib/spec/etc_files.ts). */
  addHosts?: string[];
  /** `--dns`. */
  dns?: string[];
  /** `--dns-search`. */
  dnsSearch?: string[];
  /** `--dns-option`. */
  dnsOptions?: string[];
  /** Where the container reaches the host (the network helper's gateway mapping), when it can. */
  hostGateway?: string;
  /** The resolvers the network helper offers inside (its DNS forwarder), when it has one. */
  dnsServers?: string[];
  /** The container's own address on its network, when the network setup knows it. */
  address?: string;
  /**
   * User-defined networks (`--network NAME`, given once per network, with
   * its `--network-alias`es): the container gets its own network namespace,
   * wired to them by the holder (lib/network/holder.ts).
   */
  networks?: { name: string; aliases: string[] }[];
  /** With `networks`: the network namespace to join, made and wired by the holder. */
  networkNamespace?: string;
  /**
   * With `networks`, rootless: the user namespace the container joins
   * instead of making its own, that of the network namespace holder
   * (lib/network/holder.ts), where its network namespace can be wired.
   */
  networkUserns?: string;
  /** `-t`. */
  tty: boolean;
  /** With `-t`: the terminal's size at the start (trun's own terminal's). */
  consoleSize?: { rows: number; columns: number };
  /**
   * `--init`: the host's init (catatonit or tini, static) to bind at
   * INIT_PATH and run as PID 1 in front of the command.
   */
  init?: string;
  /**
   * `--security-opt seccomp=…`: none (Docker's default profile),
   * `unconfined`, or a profile file in Docker's format (its text, read by
   * the CLI). The security issue's two halves meet here: the flag's parser
   * fills it, the seccomp compiler reads it.
   */
  seccomp?: { kind: "unconfined" } | { kind: "profile"; path: string; text: string };
  /** `--privileged`: all capabilities, no seccomp, no masked or read-only paths, host devices. */
  privileged?: boolean;
  /** `--cap-add`. */
  capAdd?: string[];
  /** `--cap-drop`. */
  capDrop?: string[];
  /** `--security-opt no-new-privileges`. */
  noNewPrivileges?: boolean;
  /** `--security-opt mask=`: more masked paths. */
  mask?: string[];
  /** `--security-opt unmask=`: default masked or read-only paths (or ALL) to leave. */
  unmask?: string[];
  /** `--ulimit NAME=SOFT[:HARD]` values. */
  ulimits?: string[];
  /** `--sysctl NAME=VALUE` values. */
  sysctls?: string[];
  /**
   * `--device`, and with `--privileged` the host's devices: the host nodes
   * already looked at (the CLI reads them).
   */
  devices?: DeviceRequest[];
  /** `--memory`, `--cpus`, `--pids-limit`…, as lib/spec/resources.ts turns them into the spec's. */
  resources?: Resources;
}

/** Where `--init`'s binary appears in the container (Podman uses /run/podman-init). */
export const INIT_PATH = "/run/trun-init";

/** Everything `generateSpec` decides from. */
export interface SpecInput {
  /** Container id (64 hex). */
  id: string;
  /** `root.path`. */
  rootPath: string;
  /** Host directory where the executor writes the /etc files. */
  filesDir: string;
  /** The image's process config. */
  image: ImageProcessConfig;
  /** Facts read from the root filesystem. */
  rootfs: RootfsFacts;
  /** The user's options. */
  options: RunOptions;
  /** Host facts. */
  host: HostFacts;
  /** Where each volume mount's data is, by container path (lib/container/volumes.ts prepares them). */
  volumes?: Readonly<Record<string, VolumeSource>>;
  /** The container's name (for /etc/hosts). */
  name?: string;
  /** With `--network container:`: the container whose network is joined. */
  networkPeer?: NetworkPeer;
}

/**
 * The running container whose network namespace a `--network container:`
 * container joins; its user namespace too (the network namespace belongs
 * to it), and it shares its hostname and /etc files, as Docker's does.
 */
export interface NetworkPeer {
  /** Its id (64 hex). */
  id: string;
  /** Its first process. */
  pid: number;
  /** Whether it has a user namespace of its own to join (not when root runs it without one). */
  userns: boolean;
  /** Its hostname. */
  hostname: string;
  /** Its domain name, if any. */
  domainname?: string;
  /** Its /etc files on the host, by name (those it has). */
  files: Partial<Record<EtcFileName, string>>;
}

/** The namespace paths of a peer's process (`/proc/PID/ns/…`), as the spec names them. */
export function peerNamespaces(peer: Pick<NetworkPeer, "pid" | "userns">): Namespace[] {
  return [
    ...(peer.userns ? [{ type: "user" as const, path: `/proc/${peer.pid}/ns/user` }] : []),
    { type: "network", path: `/proc/${peer.pid}/ns/net` },
  ];
}

/** A file the executor writes before the start and removes after the container. */
export interface ContainerFile {
  /** Host path. */
  path: string;
  /** Contents. */
  content: string;
}

/** The result of generation. */
export interface GeneratedContainer {
  /** The `config.json`. */
  spec: Spec;
  /** Files the spec's bind mounts need. */
  files: ContainerFile[];
}

function ociRanges(ranges: readonly IdRange[]): IdMappingEntry[] {
  return ranges.map((r) => ({ containerID: r.inside, hostID: r.outside, size: r.count }));
}

/** Whether `id` is mapped by `ranges` (always true without a user namespace). */
function mapped(mapping: IdMapping, id: number, kind: "uid" | "gid"): boolean {
  return mapping.mode === "host" ||
    mapping[kind].some((r) => id >= r.inside && id < r.inside + r.count);
}

/**
 * The container's `linux.seccomp`: Docker's default profile, or the
 * `--security-opt seccomp=` profile, resolved for its bounding
 * capabilities; none with `seccomp=unconfined` or `--privileged`.
 */
export function containerSeccomp(
  o: Pick<RunOptions, "seccomp" | "privileged">,
  capabilities: readonly string[],
  arch: string,
): Seccomp | undefined {
  if (o.privileged || o.seccomp?.kind === "unconfined") return undefined;
  const profile = o.seccomp?.kind === "profile"
    ? parseDockerSeccompProfile(o.seccomp.text, o.seccomp.path)
    : DEFAULT_SECCOMP_PROFILE;
  return resolveSeccompProfile(profile, { capabilities, arch });
}

/** The peer of a `--network container:` input, which must come with one. */
function networkPeerOf(input: SpecInput): NetworkPeer | undefined {
  if (input.options.network.kind !== "container") return undefined;
  if (!input.networkPeer) {
    throw new Error(
      `--network container:${input.options.network.container}: the container to join was not looked up`,
    );
  }
  return input.networkPeer;
}

/** Builds the container's `config.json` and the files its mounts need. */
export function generateSpec(input: SpecInput): GeneratedContainer {
  const { options: o, image, host } = input;
  const mapping = host.idMapping;
  const peer = networkPeerOf(input);
  // Joining a network takes its container's hostname too, as Docker does.
  const hostname = peer?.hostname ?? o.hostname ?? input.id.slice(0, 12);
  const domainname = peer ? peer.domainname : o.domainname;
  const user = resolveUser(o.user ?? image.user, input.rootfs, o.groupAdd);
  if (mapping.mode === "single" && (user.uid !== 0 || user.gid !== 0)) {
    throw new Error(
      `cannot run as user "${
        o.user ?? image.user ?? "root"
      }" (uid ${user.uid}, gid ${user.gid}): ` +
        "without subordinate ids only root is mapped in the container; " +
        "add ranges to /etc/subuid and /etc/subgid and install newuidmap (package uidmap)",
    );
  }
  const command = resolveCommand({
    imageEntrypoint: image.entrypoint,
    imageCmd: image.cmd,
    entrypointFlag: o.entrypoint,
    args: o.args,
  });
  // --init: a minimal init as PID 1 reaps zombies and passes signals on.
  const args = o.init ? [INIT_PATH, "--", ...command] : command;
  const env = buildEnvironment({
    imageEnv: image.env ?? [],
    envFiles: o.envFiles,
    envFlags: o.env,
    hostEnv: host.env,
    hostname,
    home: user.home,
    tty: o.tty,
  });
  const cwd = resolveWorkdir(o.workdir, image.workingDir);
  const requests = mountRequests(o);

  const ownNetwork = o.network.kind !== "host";
  const mounts = standardMounts({
    ownNetwork,
    ttyGroupMapped: mapped(mapping, 5, "gid"),
    ...(o.privileged ? { privileged: true } : {}),
  });
  const files: ContainerFile[] = [];
  const contents = peer ? undefined : etcFileContents({
    hostname,
    domainname,
    name: input.name,
    network: o.network,
    address: o.address,
    hostGateway: o.hostGateway,
    dnsServers: o.dnsServers,
    addHosts: o.addHosts,
    dns: o.dns,
    dnsSearch: o.dnsSearch,
    dnsOptions: o.dnsOptions,
    host,
  });
  // Bound before the volumes, so a user's -v on /etc/hosts wins.
  for (const name of ["hostname", "hosts", "resolv.conf"] as const) {
    if (!input.rootfs.etcBindable[name]) continue;
    // A joined network's container shares its files, so changes to them show in both.
    let path = peer?.files[name];
    const text = contents?.[name];
    if (text !== undefined && text !== null) {
      path = `${input.filesDir}/${name}`;
      files.push({ path, content: text });
    }
    if (path === undefined) continue;
    mounts.push({ destination: `/etc/${name}`, type: "bind", source: path, options: ["bind"] });
  }
  if (o.init) {
    mounts.push({
      destination: INIT_PATH,
      type: "bind",
      source: o.init,
      options: ["bind", "ro", "nosuid", "nodev"],
    });
  }
  const devices = deviceSpec(o.devices ?? [], mapping.mode !== "host");
  mounts.push(...devices.mounts);
  mounts.push(...ociMounts(requests, input.volumes ?? {}));

  const namespaces: Namespace[] = [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
  ];
  if (peer) namespaces.push(...peerNamespaces(peer));
  else {
    if (o.networkNamespace !== undefined) {
      namespaces.push({ type: "network", path: o.networkNamespace });
    } else if (ownNetwork) namespaces.push({ type: "network" });
    if (o.networkUserns !== undefined) namespaces.push({ type: "user", path: o.networkUserns });
    else if (mapping.mode !== "host") namespaces.push({ type: "user" });
  }
  // A joined user namespace comes with its mapping (checked equal to ours).
  const ownUserns = namespaces.some((n) => n.type === "user" && n.path === undefined);
  // A cgroup of its own: a cgroup namespace rooted there and cgroup2 at
  // /sys/fs/cgroup, so it sees its own limits (Docker's and Podman's
  // default on cgroup v2); read-only unless --privileged.
  const cgroupsPath = host.cgroupParent === undefined
    ? undefined
    : `${host.cgroupParent.replace(/\/+$/, "")}/${input.id}`;
  if (cgroupsPath !== undefined) {
    namespaces.push({ type: "cgroup" });
    // Right after /sys, before the user's mounts (which may cover it).
    mounts.splice(mounts.findIndex((m) => m.destination === "/sys") + 1, 0, {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", o.privileged ? "rw" : "ro"],
    });
  }

  const capRequest = {
    ...(o.capAdd ? { add: o.capAdd } : {}),
    ...(o.capDrop ? { drop: o.capDrop } : {}),
    ...(o.privileged ? { privileged: true } : {}),
    ...(host.capabilities ? { available: host.capabilities } : {}),
  };
  const capabilities = capabilitySets(capabilityList(capRequest), user.uid, capRequest);
  const paths = maskedAndReadonlyPaths(
    { masked: MASKED_PATHS, readonly: READONLY_PATHS },
    {
      ...(o.mask ? { mask: o.mask } : {}),
      ...(o.unmask ? { unmask: o.unmask } : {}),
      ...(o.privileged ? { privileged: true } : {}),
    },
  );
  const rlimits = parseUlimits(o.ulimits ?? []);
  const sysctl = parseSysctls(o.sysctls ?? [], ownNetwork);
  // The filter follows the capabilities the container ends up with.
  const seccomp = containerSeccomp(o, capabilities.bounding, host.arch ?? "amd64");
  const spec: Spec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: o.tty,
      ...(o.tty && o.consoleSize
        ? { consoleSize: { height: o.consoleSize.rows, width: o.consoleSize.columns } }
        : {}),
      user: {
        uid: user.uid,
        gid: user.gid,
        // In a single-id mapping setgroups is denied; only root exists anyway.
        additionalGids: mapping.mode === "single" ? [] : user.additionalGids,
      },
      args,
      env,
      cwd,
      capabilities,
      ...(rlimits.length > 0 ? { rlimits } : {}),
      noNewPrivileges: o.noNewPrivileges === true,
    },
    root: { path: input.rootPath, readonly: o.readOnly },
    hostname,
    ...(domainname ? { domainname } : {}),
    mounts,
    linux: {
      namespaces,
      ...(!ownUserns
        ? {}
        : { uidMappings: ociRanges(mapping.uid), gidMappings: ociRanges(mapping.gid) }),
      ...(cgroupsPath !== undefined ? { cgroupsPath } : {}),
      ...(o.resources ? { resources: o.resources } : {}),
      maskedPaths: paths.masked,
      readonlyPaths: paths.readonly,
      ...(devices.devices.length > 0 ? { devices: devices.devices } : {}),
      ...(Object.keys(sysctl).length > 0 ? { sysctl } : {}),
      ...(seccomp ? { seccomp } : {}),
    },
  };
  return { spec, files };
}
