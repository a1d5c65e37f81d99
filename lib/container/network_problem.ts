/**
 * What `ps` and `inspect` say of a running container whose network broke:
 * its helper died, or the holder of the user-defined networks' namespace
 * (or the holder's pasta) did. Apart from lib/container/network_helper.ts
 * because asking after the holder loads it, which starting a container
 * does not need.
 */
import type { ContainerRecord } from "../store/containers.ts";
import { holderPastaAlive, runningHolder } from "../network/holder.ts";
import { helperAlive } from "./network_helper.ts";

/** What is broken in a running container's network: a short label for `ps`, and the whole story. */
export interface NetworkProblem {
  /** `ps`'s Status suffix, without parentheses. */
  label: string;
  /** `inspect`'s State.Error. */
  error: string;
}

/**
 * The state of the shared namespace of user-defined networks: whether its
 * holder runs, and whether the holder's pasta does (undefined: it has none).
 */
export interface HolderState {
  /** The holder process runs. */
  holder: boolean;
  /** Its pasta runs; undefined when it was started without one. */
  pasta?: boolean | undefined;
}

/**
 * Why a running container's network is broken: its helper (pasta,
 * slirp4netns, or the forwarder of its published ports) died, or, on
 * user-defined networks, the holder of the shared namespace or the
 * holder's pasta did (`holder`, asked only for such a container).
 * Undefined when it is fine.
 */
export function networkProblem(
  rec: ContainerRecord,
  holder: () => HolderState = currentHolderState,
): NetworkProblem | undefined {
  const h = rec.network?.helper;
  if (h && !helperAlive(h)) {
    return {
      label: `network helper ${h.kind} exited`,
      error: h.kind === "forwarder"
        ? `the forwarder of the published ports (pid ${h.pid}) exited while the container ` +
          "runs: its ports are not reachable; restart the container"
        : `network helper ${h.kind} (pid ${h.pid}) exited while the container runs: ` +
          "it has no network connectivity; restart the container",
    };
  }
  if (Object.keys(rec.network?.networks ?? {}).length === 0) return undefined;
  const s = holder();
  if (!s.holder) {
    return {
      label: "network holder exited",
      error: "the holder of the user-defined networks' namespace exited while the container " +
        "runs: it is cut off from its networks; the next trun run or start on a network " +
        "starts a new holder and wires it again",
    };
  }
  if (s.pasta === false) {
    return {
      label: "network holder's pasta exited",
      error: "the pasta of the user-defined networks' namespace exited while the container " +
        "runs: no way out and no published ports; the next trun run or start on a network " +
        "attaches a new one",
    };
  }
  return undefined;
}

/** The holder's state on this host. */
function currentHolderState(): HolderState {
  if (runningHolder() === null) return { holder: false };
  return { holder: true, pasta: holderPastaAlive() };
}

/** The whole story of {@link networkProblem}, or undefined when the network is fine. */
export function helperProblem(rec: ContainerRecord): string | undefined {
  return networkProblem(rec)?.error;
}
