/**
 * Container records built by hand for the tests of `ps` and `inspect`, and
 * a temporary store (`TRUN_ROOT`) holding them for the commands' own runs.
 */
import { openStore } from "../../lib/store/mod.ts";
import type { ContainerRecord } from "../../lib/store/containers.ts";

/** An image id of 64 `c`s. */
export const IMAGE_ID = `sha256:${"c".repeat(64)}`;

/** A container record: an exited `sleep 1000` of busybox unless `over` says otherwise. */
export function containerRecord(
  over: Partial<ContainerRecord> & { id: string; name: string },
): ContainerRecord {
  return {
    kind: "container",
    imageId: IMAGE_ID,
    image: "busybox",
    created: "2024-01-01T11:00:00.000Z",
    command: ["sleep", "1000"],
    labels: {},
    tty: false,
    autoRemove: false,
    stopSignal: "SIGTERM",
    stopTimeout: 10,
    pid: 0,
    startTime: "",
    monitorPid: 0,
    monitorStartTime: "",
    state: "created",
    ...over,
  };
}

/** A container id: `prefix`, then zeros to 64 hex digits. */
export const cid = (prefix: string): string => prefix + "0".repeat(64 - prefix.length);

/** Runs `fn` with `TRUN_ROOT` on a temporary store holding `records`; removes it after. */
export async function withRecords<T>(
  records: readonly ContainerRecord[],
  fn: (root: string) => Promise<T>,
): Promise<T> {
  const root = await Deno.makeTempDir({ prefix: "trun-ps-" });
  const before = Deno.env.get("TRUN_ROOT");
  try {
    const store = openStore(root);
    try {
      for (const r of records) store.addRecord(r);
    } finally {
      store.close();
    }
    Deno.env.set("TRUN_ROOT", root);
    return await fn(root);
  } finally {
    if (before === undefined) Deno.env.delete("TRUN_ROOT");
    else Deno.env.set("TRUN_ROOT", before);
    await Deno.remove(root, { recursive: true });
  }
}

/** Runs `fn` with stdout and stderr captured; returns its result and what each got. */
export async function capture<T>(
  fn: () => Promise<T>,
): Promise<{ result: T | undefined; error: unknown; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const dec = new TextDecoder();
  const writeOut = Deno.stdout.writeSync;
  const writeErr = Deno.stderr.writeSync;
  Deno.stdout.writeSync = (p: Uint8Array) => (out.push(dec.decode(p)), p.length);
  Deno.stderr.writeSync = (p: Uint8Array) => (err.push(dec.decode(p)), p.length);
  let result: T | undefined;
  let error: unknown;
  try {
    result = await fn();
  } catch (e) {
    error = e;
  } finally {
    Deno.stdout.writeSync = writeOut;
    Deno.stderr.writeSync = writeErr;
  }
  return { result, error, stdout: out.join(""), stderr: err.join("") };
}
