/**
 * Freezing and thawing a cgroup v2 (`cgroup.freeze`), for `pause` and
 * `unpause`: the write asks, and `cgroup.events` says when every process
 * is actually stopped (`frozen 1`) or running again (`frozen 0`), as in
 * Documentation/admin-guide/cgroup-v2.rst "Core Interface Files".
 */

/** The `key value` lines of `cgroup.events` (`populated 1`, `frozen 0`). Pure. */
export function parseCgroupEvents(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** Whether the cgroup `dir` reports itself frozen (false when it cannot be read). */
export function isFrozen(dir: string): boolean {
  try {
    return parseCgroupEvents(Deno.readTextFileSync(`${dir}/cgroup.events`)).frozen === 1;
  } catch {
    return false;
  }
}

/** How long `setFrozen` waits for `cgroup.events` by default. */
export const FREEZE_TIMEOUT_MS = 5_000;

/**
 * Freezes (`frozen` true) or thaws the cgroup `dir`, then waits until
 * `cgroup.events` agrees. A freeze that does not complete in `timeoutMs`
 * is undone (as runc does), and is an error naming the cgroup.
 */
export async function setFrozen(
  dir: string,
  frozen: boolean,
  timeoutMs = FREEZE_TIMEOUT_MS,
): Promise<void> {
  try {
    Deno.writeTextFileSync(`${dir}/cgroup.freeze`, frozen ? "1" : "0", { create: false });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `"${dir}/cgroup.freeze" does not exist: the kernel has no cgroup v2 freezer (Linux 5.2 or later has)`,
      );
    }
    throw new Error(
      `writing "${dir}/cgroup.freeze": ${e instanceof Error ? e.message : e}`,
    );
  }
  const end = Date.now() + timeoutMs;
  for (let wait = 1;; wait = Math.min(wait * 2, 50)) {
    if (isFrozen(dir) === frozen) return;
    if (Date.now() >= end) break;
    await new Promise((r) => setTimeout(r, wait));
  }
  if (frozen) {
    try {
      Deno.writeTextFileSync(`${dir}/cgroup.freeze`, "0", { create: false });
    } catch {
      // Gone meanwhile: nothing is left frozen.
    }
  }
  throw new Error(
    `the cgroup "${dir}" did not report "frozen ${frozen ? 1 : 0}" in cgroup.events within ` +
      `${timeoutMs / 1000} s${frozen ? " (thawed again)" : ""}`,
  );
}
