/**
 * Restart policies (`--restart`), applied where Podman applies them
 * without a daemon: by the monitor when the container exits, not across
 * reboots. Docker's rules: `no`; `on-failure[:N]` (a non-zero exit, at
 * most N times); `always` and `unless-stopped` (any exit) — none of them
 * after `trun stop`, which marks the container stopped by the user.
 */

/** A parsed `--restart` value. */
export interface RestartPolicy {
  /** Docker's policy name. */
  name: "no" | "on-failure" | "always" | "unless-stopped";
  /** `on-failure:N`: the most restarts (0: no limit). */
  maxRetries: number;
}

/** Parses `--restart`, with Docker's error for a bad value. */
export function parseRestartPolicy(text: string): RestartPolicy {
  const [name, count, ...rest] = text.split(":");
  if (rest.length > 0) throw new Error(`invalid restart policy "${text}"`);
  if (name === "no" || name === "always" || name === "unless-stopped") {
    if (count !== undefined) {
      throw new Error(
        `invalid restart policy "${text}": maximum retry count cannot be used with "${name}"`,
      );
    }
    return { name, maxRetries: 0 };
  }
  if (name === "on-failure") {
    if (count === undefined) return { name, maxRetries: 0 };
    if (!/^\d+$/.test(count)) {
      throw new Error(`invalid restart policy "${text}": "${count}" is not a count`);
    }
    return { name, maxRetries: Number(count) };
  }
  throw new Error(
    `invalid restart policy "${text}": use no, on-failure[:max-retries], always or unless-stopped`,
  );
}

/** Whether the monitor starts the container again after it exited with `exitCode`. */
export function shouldRestart(
  policy: RestartPolicy | undefined,
  exitCode: number,
  restartCount: number,
  stoppedByUser: boolean,
): boolean {
  if (!policy || policy.name === "no" || stoppedByUser) return false;
  if (policy.name === "on-failure") {
    return exitCode !== 0 && (policy.maxRetries === 0 || restartCount < policy.maxRetries);
  }
  return true;
}

/** Docker's delay before restart n (0-based): 100 ms, doubling, at most a minute. */
export function restartDelay(n: number): number {
  return Math.min(100 * 2 ** n, 60_000);
}
