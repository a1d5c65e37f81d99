/**
 * What gives rootless containers a network: pasta(1) (Debian's passt) or
 * slirp4netns(1), both of which need a usable /dev/net/tun.
 */
import { findExecutable } from "../runtime/idmap.ts";
import { type DeviceAccess, deviceAccess, type Who } from "./access.ts";

/** What gives containers a network. */
export interface NetworkReport {
  /** pasta, if installed. */
  pasta: string | null;
  /** slirp4netns, if installed. */
  slirp4netns: string | null;
  /** /dev/net/tun, which both need. */
  devNetTun: DeviceAccess;
}

/** Who and where {@link probeNetwork} probes. */
export interface NetworkInput {
  /** Prefix for /dev and the PATH directories. */
  root: string;
  /** The probed user. */
  who: Who;
  /** The probed user's login name, for messages. */
  name: string;
  /** The PATH searched. */
  pathEnv: string;
}

/** The network helpers and /dev/net/tun, and one problem line when containers get no network. */
export function probeNetwork(input: NetworkInput): { report: NetworkReport; problems: string[] } {
  const { root, who, name, pathEnv } = input;
  const problems: string[] = [];
  const rootless = who.uid !== 0;
  const pasta = findExecutable("pasta", pathEnv, root);
  const slirp4netns = findExecutable("slirp4netns", pathEnv, root);
  const devNetTun = deviceAccess(root, "/dev/net/tun", who);
  if (rootless && pasta === null && slirp4netns === null) {
    problems.push(
      "neither pasta nor slirp4netns found: containers get only loopback (--network none or " +
        "host); install passt (for pasta) or slirp4netns",
    );
  } else if (rootless && !devNetTun.accessible) {
    problems.push(
      devNetTun.exists
        ? `/dev/net/tun is mode ${devNetTun.mode} and not open to ${name}: pasta and slirp4netns ` +
          `cannot give containers a network; chmod 0666 /dev/net/tun, its usual mode`
        : "/dev/net/tun does not exist: pasta and slirp4netns cannot give containers a network; " +
          "modprobe tun",
    );
  }
  return { report: { pasta, slirp4netns, devNetTun }, problems };
}

/** What the default private network resolves to on this host, and why. */
export interface PrivateNetworkChoice {
  /** The helper that gives the namespace its connectivity, or none. */
  kind: "pasta" | "slirp4netns" | "none";
  /** Why (for `trun info`), and with `none` what to install. */
  why: string;
}

/**
 * The helper the default network uses: pasta when installed and
 * /dev/net/tun is usable, else slirp4netns, else none (loopback only).
 */
export function choosePrivateNetwork(report: NetworkReport): PrivateNetworkChoice {
  const tun = report.devNetTun;
  if (!tun.accessible) {
    return {
      kind: "none",
      why: tun.exists
        ? `/dev/net/tun is mode ${tun.mode} and not usable: containers get only loopback; ` +
          "chmod 0666 /dev/net/tun, its usual mode"
        : "/dev/net/tun does not exist: containers get only loopback; modprobe tun",
    };
  }
  if (report.pasta !== null) return { kind: "pasta", why: `pasta found at ${report.pasta}` };
  if (report.slirp4netns !== null) {
    return {
      kind: "slirp4netns",
      why: `pasta not found; slirp4netns found at ${report.slirp4netns}`,
    };
  }
  return {
    kind: "none",
    why: "neither pasta nor slirp4netns found: containers get only loopback; " +
      "install passt (for pasta) or slirp4netns",
  };
}
