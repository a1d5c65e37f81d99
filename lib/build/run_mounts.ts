/**
 * `RUN --mount=…` (BuildKit's syntax) and `trun build --secret`: what each
 * mount is, and how it reaches the RUN container as `trun run` flags. A
 * bind mount shows part of the context, read-only; a cache mount is a
 * directory kept in the store across builds, by id; a tmpfs is empty each
 * time; a secret is a file given with `--secret`, mounted read-only, and
 * none of them ends up in the step's layer (their mount points are left
 * out of it).
 */
import { posix } from "node:path";

/** One `RUN --mount`. */
export type RunMount =
  | { type: "bind"; target: string; source: string; from?: string }
  | { type: "cache"; target: string; id: string; from?: string }
  | { type: "tmpfs"; target: string; size?: string }
  | { type: "secret"; target: string; id: string; required: boolean };

/** Parses one `--mount` value; `workdir` makes relative targets absolute. */
export function parseRunMount(value: string, workdir: string): RunMount {
  const fields = new Map<string, string>();
  for (const part of value.split(",")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    fields.set(key, eq < 0 ? "true" : part.slice(eq + 1));
  }
  const type = fields.get("type") ?? "bind";
  const rawTarget = fields.get("target") ?? fields.get("dst") ?? fields.get("destination");
  const bad = (why: string) => new Error(`invalid --mount "${value}": ${why}`);
  const known: Record<string, string[]> = {
    bind: ["source", "src", "from", "readonly", "ro"],
    cache: ["id", "from", "source", "src", "sharing", "mode", "uid", "gid", "readonly", "ro"],
    tmpfs: ["size"],
    secret: ["id", "required", "mode", "uid", "gid"],
  };
  if (!(type in known)) throw bad(`type "${type}" is not bind, cache, tmpfs or secret`);
  for (const k of fields.keys()) {
    if (!["type", "target", "dst", "destination", ...known[type]!].includes(k)) {
      throw bad(`"${k}" is not an option of a ${type} mount`);
    }
  }
  if (fields.get("rw") !== undefined) throw bad("rw bind mounts are not supported");
  const id = fields.get("id");
  if (type === "secret") {
    if (!id && !rawTarget) throw bad("a secret mount needs id= or target=");
    const secretId = id ?? posix.basename(rawTarget!);
    return {
      type,
      id: secretId,
      target: rawTarget ? posix.resolve(workdir, rawTarget) : `/run/secrets/${secretId}`,
      required: fields.get("required") === "true",
    };
  }
  if (!rawTarget) throw bad("target= is required");
  const target = posix.resolve(workdir, rawTarget);
  const from = fields.get("from");
  if (type === "bind") {
    return {
      type,
      target,
      source: fields.get("source") ?? fields.get("src") ?? ".",
      ...(from ? { from } : {}),
    };
  }
  if (type === "cache") return { type, target, id: id ?? target, ...(from ? { from } : {}) };
  const size = fields.get("size");
  return { type: "tmpfs", target, ...(size ? { size } : {}) };
}

/** `--secret id=ID,src=PATH` (or `env=VAR`; `type=file|env`) → the file or value, by id. */
export function parseSecret(value: string): { id: string; src?: string; env?: string } {
  const fields = new Map(
    value.split(",").map((p) => {
      const eq = p.indexOf("=");
      return [eq < 0 ? p : p.slice(0, eq), eq < 0 ? "" : p.slice(eq + 1)] as [string, string];
    }),
  );
  const id = fields.get("id");
  if (!id) throw new Error(`invalid --secret "${value}": id= is required`);
  const src = fields.get("src") ?? fields.get("source");
  const env = fields.get("env");
  if (fields.get("type") === "env" || (env && !src)) return { id, env: env ?? id };
  if (!src) throw new Error(`invalid --secret "${value}": src= (a file) or env= is required`);
  return { id, src };
}

/** A cache mount's directory name in the store (ids may hold any character). */
export function cacheDirName(id: string): string {
  return encodeURIComponent(id).replace(/%/g, "_");
}
