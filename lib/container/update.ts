/**
 * Docker's `update` of a container that outlives its command: the new
 * limits go into its stored spec (`userdata/config.json`, so the next
 * start keeps them) and, while it runs in a cgroup of its own, into that
 * cgroup's files at once; `--restart` into its record.
 */
import { containerCgroup, noCgroupMessage } from "../cgroup/container_cgroup.ts";
import { resourceFiles } from "../engine/cgroup.ts";
import { updateResources } from "../spec/resources.ts";
import type { Resources } from "../spec/types.ts";
import type { ContainerRecord } from "../store/mod.ts";
import { containerStatus } from "./status.ts";

/** The spec of a container whose directory is `dir`. */
function specPath(dir: string): string {
  return `${dir}/userdata/config.json`;
}

/** The `linux.resources` of the container whose directory is `dir` ({} when none). */
export function storedResources(dir: string): Resources {
  try {
    const spec = JSON.parse(Deno.readTextFileSync(specPath(dir)));
    return (spec?.linux?.resources ?? {}) as Resources;
  } catch {
    return {};
  }
}

/**
 * The part of `next` that `change` touches (whole categories: a new
 * memory limit rewrites memory.max and memory.swap.max together).
 */
function touched(next: Resources, change: Resources): Resources {
  const out: Resources = {};
  if (change.memory && next.memory) out.memory = next.memory;
  if (change.cpu && next.cpu) out.cpu = next.cpu;
  if (change.pids && next.pids) out.pids = next.pids;
  if (change.blockIO && next.blockIO) out.blockIO = next.blockIO;
  return out;
}

/**
 * Applies `change` to container `rec` (directory `dir`): checked against
 * its current limits (Docker's "Cannot update container" errors), stored
 * in its spec, and written to its cgroup when it runs in one of its own.
 * Returns one warning per thing that could not take effect now.
 */
export function updateContainerResources(
  rec: ContainerRecord,
  dir: string,
  change: Resources,
): string[] {
  const path = specPath(dir);
  let spec: { linux?: { resources?: Resources } };
  try {
    spec = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw new Error(
      `Cannot update container ${rec.id}: reading "${path}": ${e instanceof Error ? e.message : e}`,
    );
  }
  let next: Resources;
  try {
    next = updateResources(spec.linux?.resources ?? {}, change);
  } catch (e) {
    throw Object.assign(
      new Error(`Cannot update container ${rec.id}: ${e instanceof Error ? e.message : e}`),
      { exitCode: 1 },
    );
  }
  spec.linux = { ...spec.linux, resources: next };
  const tmp = `${path}.trun-tmp`;
  Deno.writeTextFileSync(tmp, JSON.stringify(spec));
  Deno.renameSync(tmp, path);
  if (containerStatus(rec) !== "running") return [];
  const { files } = resourceFiles(touched(next, change));
  const found = containerCgroup(rec.pid, rec.cgroup);
  const short = rec.id.slice(0, 12);
  if (found.dir === undefined) {
    return [
      `${noCgroupMessage(`the new limits of ${short} take effect at its next start`, found.why)}`,
    ];
  }
  const missing: string[] = [];
  const warnings: string[] = [];
  for (const [file, value] of files) {
    try {
      Deno.writeTextFileSync(`${found.dir}/${file}`, value, { create: false });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) missing.push(file);
      else {
        throw Object.assign(
          new Error(
            `Cannot update container ${rec.id}: writing ${value} to "${found.dir}/${file}": ${
              e instanceof Error ? e.message : e
            }`,
          ),
          { exitCode: 1 },
        );
      }
    }
  }
  if (missing.length > 0) {
    let offered = "none";
    try {
      offered = Deno.readTextFileSync(`${found.dir}/cgroup.controllers`).trim() || "none";
    } catch {
      // Unreadable: say none.
    }
    warnings.push(
      `the cgroup "${found.dir}" of ${short} lacks the controllers for ${
        missing.join(", ")
      } (it offers: ${offered}): kept in its config.json, not enforced now`,
    );
  }
  return warnings;
}
