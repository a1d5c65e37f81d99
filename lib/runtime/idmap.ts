/**
 * User-namespace id mapping: which host ids a container's ids become, and
 * writing that mapping for a freshly cloned child.
 *
 * Follows user_namespaces(7) (the `uid_map`/`gid_map`/`setgroups` rules),
 * subuid(5)/subgid(5) (the subordinate-id files) and newuidmap(1)/
 * newgidmap(1) (the setuid helpers that may map ranges an unprivileged user
 * owns but cannot map alone). With helpers and ranges the container gets
 * 0 → the user and 1.. → the subordinate ids, so images with files owned by
 * `_apt` or `www-data` work; without them it gets the single mapping
 * 0 → the user (only root exists inside) and a one-line warning saying what
 * to install or add.
 *
 * This module is on the hot path of `trun run`: it uses no `node:` imports
 * and reads three small files. The helpers are spawned natively through the
 * clone stub (`spawnProcess`) rather than with `Deno.Command`: the first
 * `Deno.Command` of a process costs ~12 ms, the stub ~1 ms.
 */
import { statBasic } from "../../ffi/fs.ts";
import { S } from "../../ffi/syscalls.ts";
import {
  cloexecPipe,
  closeFd,
  type ExitStatus,
  readFd,
  spawnProcess,
  waitChild,
} from "../../ffi/child_program.ts";

/** One line of /etc/subuid or /etc/subgid: `owner:start:count`. */
export interface SubordinateEntry {
  /** A login name or a numeric uid, as written in the file. */
  owner: string;
  /** First host id of the range. */
  start: number;
  /** Number of ids in the range (at least 1). */
  count: number;
}

/** One line of a `uid_map`/`gid_map`: ids `inside..inside+count` are host ids `outside..`. */
export interface IdRange {
  /** First id as seen inside the user namespace. */
  inside: number;
  /** First id as seen on the host (the parent user namespace). */
  outside: number;
  /** Number of consecutive ids. */
  count: number;
}

/** How a container's user namespace maps ids, decided before the child is cloned. */
export interface IdMapping {
  /**
   * `subordinate`: 0 → the user, 1.. → /etc/subuid ranges, written by
   * newuidmap/newgidmap. `single`: only 0 → the user, written directly.
   * `host`: trun runs as root and uses no user namespace (ids are the host's).
   * `direct`: trun is root in its own namespace and writes any given ranges
   * itself (a runtime spec's mappings, when trun runs as root).
   */
  mode: "subordinate" | "single" | "host" | "direct";
  /** The uid ranges, in `uid_map` order. */
  uid: IdRange[];
  /** The gid ranges, in `gid_map` order. */
  gid: IdRange[];
  /** The helpers that write the maps in `subordinate` mode. */
  helpers?: { newuidmap: string; newgidmap: string };
  /** One line for the user when the mapping is less than it could be. */
  warning?: string;
}

/** Everything {@link planIdMapping} decides from; all read by {@link loadIdMapping}. */
export interface IdMappingInput {
  /** The caller's uid. */
  uid: number;
  /** The caller's primary gid. */
  gid: number;
  /** The caller's login name (matched against the files, with the numeric uid). */
  userName: string;
  /** Contents of /etc/subuid, or null when it does not exist. */
  subuidText: string | null;
  /** Contents of /etc/subgid, or null when it does not exist. */
  subgidText: string | null;
  /** Path of the newuidmap helper, or null when it was not found. */
  newuidmap: string | null;
  /** Path of the newgidmap helper, or null when it was not found. */
  newgidmap: string | null;
  /** Where subuidText came from, for messages (default `/etc/subuid`). */
  subuidPath?: string;
  /** Where subgidText came from, for messages (default `/etc/subgid`). */
  subgidPath?: string;
}

/** The largest id plus one: ids are 32-bit and (uid_t)-1 is never valid. */
const ID_LIMIT = 0xffffffff;
/** Lines a uid_map may hold since Linux 4.15 (user_namespaces(7)); one goes to 0 → user. */
const MAX_MAP_LINES = 340;
/** The identity map of the initial user namespace, as /proc/1/uid_map shows it. */
const HOST_RANGE: IdRange = { inside: 0, outside: 0, count: ID_LIMIT };
const SINGLE_FALLBACK = "using a single-id mapping (only root inside the container)";

/**
 * Parses subuid(5)/subgid(5) text. Comment lines (`#`), blank lines and
 * malformed lines (missing fields, non-decimal numbers, a zero count, a
 * range past 2^32-1) are skipped: newuidmap ignores them too, and one bad
 * line must not cost the user every other range.
 */
export function parseSubordinateIds(text: string): SubordinateEntry[] {
  const entries: SubordinateEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(":");
    if (fields.length !== 3) continue;
    const [owner, startText, countText] = fields as [string, string, string];
    if (owner === "" || !/^\d+$/.test(startText) || !/^\d+$/.test(countText)) continue;
    const start = Number(startText), count = Number(countText);
    if (count === 0 || start + count > ID_LIMIT) continue;
    entries.push({ owner, start, count });
  }
  return entries;
}

/**
 * The entries that belong to `user`: subuid(5) lets the owner field be the
 * login name or the numeric uid, and newuidmap accepts both, so do we.
 */
export function rangesFor(
  entries: readonly SubordinateEntry[],
  user: { name: string; uid: number },
): SubordinateEntry[] {
  const numeric = String(user.uid);
  return entries.filter((e) => e.owner === user.name || e.owner === numeric);
}

/**
 * A free range to suggest in `usermod --add-subuids`: 65536 ids starting at
 * 100000 or after the highest range already given to anyone, so that
 * following the hint never overlaps another user's ids.
 */
export function suggestSubordinateRange(
  entries: readonly SubordinateEntry[],
): { start: number; count: number } {
  let start = 100000;
  for (const e of entries) start = Math.max(start, e.start + e.count);
  return { start, count: 65536 };
}

/**
 * Sorts and merges overlapping ranges, then cuts out `own` (the user's id,
 * already mapped to 0): the kernel rejects a map whose host ranges overlap,
 * which duplicate lines or a range covering the user's own uid would cause.
 */
function normaliseHostRanges(
  ranges: readonly SubordinateEntry[],
  own: number,
): { start: number; count: number }[] {
  const sorted = ranges.map((r) => ({ start: r.start, end: r.start + r.count }))
    .sort((a, b) => a.start - b.start);
  const merged: { start: number; end: number }[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else merged.push({ ...r });
  }
  const out: { start: number; count: number }[] = [];
  for (const r of merged) {
    if (own >= r.start && own < r.end) {
      if (own > r.start) out.push({ start: r.start, count: own - r.start });
      if (r.end > own + 1) out.push({ start: own + 1, count: r.end - own - 1 });
    } else {
      out.push({ start: r.start, count: r.end - r.start });
    }
  }
  return out;
}

/**
 * The container's map: 0 → `own`, then the host ranges one after another
 * (each range's inside ids continue where the previous one ended).
 */
function subordinateMap(own: number, hostRanges: readonly { start: number; count: number }[]) {
  const map: IdRange[] = [{ inside: 0, outside: own, count: 1 }];
  let next = 1;
  for (const r of hostRanges.slice(0, MAX_MAP_LINES - 1)) {
    const count = Math.min(r.count, ID_LIMIT - next);
    if (count <= 0) break;
    map.push({ inside: next, outside: r.start, count });
    next += count;
  }
  return map;
}

/**
 * Decides the mapping from what the host offers (pure: the caller reads the
 * files and finds the helpers). uid 0 gets `host` mode. Otherwise the
 * subordinate mapping needs both helpers and both a uid and a gid range;
 * when any is missing, the single mapping 0 → the user is returned with one
 * line naming each missing piece and its fix.
 */
export function planIdMapping(input: IdMappingInput): IdMapping {
  if (input.uid === 0) return { mode: "host", uid: [HOST_RANGE], gid: [HOST_RANGE] };
  const user = { name: input.userName, uid: input.uid };
  const subuidPath = input.subuidPath ?? "/etc/subuid";
  const subgidPath = input.subgidPath ?? "/etc/subgid";
  const uidEntries = parseSubordinateIds(input.subuidText ?? "");
  const gidEntries = parseSubordinateIds(input.subgidText ?? "");
  const uidRanges = normaliseHostRanges(rangesFor(uidEntries, user), input.uid);
  const gidRanges = normaliseHostRanges(rangesFor(gidEntries, user), input.gid);

  const missing: string[] = [];
  const absent = [input.newuidmap ? "" : "newuidmap", input.newgidmap ? "" : "newgidmap"]
    .filter((s) => s !== "");
  if (absent.length > 0) {
    missing.push(
      `${absent.join(" and ")} not found: install the uidmap package ` +
        `(apt-get install uidmap; shadow-utils on Fedora)`,
    );
  }
  const noUid = uidRanges.length === 0, noGid = gidRanges.length === 0;
  if (noUid || noGid) {
    const s = suggestSubordinateRange([...uidEntries, ...gidEntries]);
    const span = `${s.start}-${s.start + s.count - 1}`;
    const where = noUid && noGid
      ? `no subordinate uid or gid range for "${user.name}" in ${subuidPath} and ${subgidPath}`
      : noUid
      ? `no subordinate uid range for "${user.name}" in ${subuidPath}`
      : `no subordinate gid range for "${user.name}" in ${subgidPath}`;
    const flags = [noUid ? `--add-subuids ${span}` : "", noGid ? `--add-subgids ${span}` : ""]
      .filter((f) => f !== "").join(" ");
    missing.push(
      `${where}: add ${noUid && noGid ? "them" : "one"} (usermod ${flags} ${user.name})`,
    );
  }
  if (missing.length > 0) {
    return {
      mode: "single",
      uid: [{ inside: 0, outside: input.uid, count: 1 }],
      gid: [{ inside: 0, outside: input.gid, count: 1 }],
      warning: `${missing.join("; ")}; ${SINGLE_FALLBACK}`,
    };
  }
  const mapping: IdMapping = {
    mode: "subordinate",
    uid: subordinateMap(input.uid, uidRanges),
    gid: subordinateMap(input.gid, gidRanges),
    helpers: { newuidmap: input.newuidmap as string, newgidmap: input.newgidmap as string },
  };
  if (uidRanges.length >= MAX_MAP_LINES || gidRanges.length >= MAX_MAP_LINES) {
    mapping.warning = `more than ${MAX_MAP_LINES - 1} subordinate ranges for "${user.name}": ` +
      `the kernel takes ${MAX_MAP_LINES} map lines, the rest are left out; merge ranges in ` +
      `${subuidPath} and ${subgidPath}`;
  }
  return mapping;
}

/** Directories searched for helpers after $PATH: a `runuser` or cron PATH often lacks sbin. */
const FALLBACK_DIRS = ["/usr/bin", "/usr/sbin", "/bin"];

/**
 * The first executable regular file called `name` in the `pathEnv` directories
 * (then /usr/bin, /usr/sbin, /bin), or null. `root` prefixes every directory
 * (tests point it at a fake tree); the returned path is without it.
 */
export function findExecutable(name: string, pathEnv: string, root = ""): string | null {
  const seen = new Set<string>();
  for (const dir of [...pathEnv.split(":"), ...FALLBACK_DIRS]) {
    if (!dir.startsWith("/") || seen.has(dir)) continue; // relative PATH entries are a trap
    seen.add(dir);
    const path = `${dir.replace(/\/+$/, "")}/${name}`;
    // A raw stat: a missing entry is the common answer, not an exception.
    const st = statBasic(`${root}${path}`);
    if (st !== null && (st.mode & S.IFMT) === S.IFREG && (st.mode & 0o111) !== 0) return path;
  }
  return null;
}

/** The login name of `uid` in passwd(5) text, or null when no line has it. */
export function userNameFromPasswd(passwdText: string, uid: number): string | null {
  const wanted = String(uid);
  for (const line of passwdText.split("\n")) {
    const fields = line.split(":");
    if (fields.length >= 3 && fields[2] === wanted && fields[0]) return fields[0];
  }
  return null;
}

function readOrNull(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    // Absent or unreadable: the plan says so in its warning.
    return null;
  }
}

/**
 * The caller's login name: /etc/passwd first (the uid is the truth, and
 * `runuser`, cron or systemd units may not set USER/LOGNAME), then
 * USER/LOGNAME (users from LDAP/NSS are not in /etc/passwd), then the
 * numeric uid, which subuid(5) also accepts.
 */
export function currentUserName(
  uid: number,
  opts: { passwdPath?: string; env?: Readonly<Record<string, string | undefined>> } = {},
): string {
  const passwd = readOrNull(opts.passwdPath ?? "/etc/passwd");
  const fromPasswd = passwd === null ? null : userNameFromPasswd(passwd, uid);
  if (fromPasswd) return fromPasswd;
  const env = opts.env ?? { USER: Deno.env.get("USER"), LOGNAME: Deno.env.get("LOGNAME") };
  return env.USER || env.LOGNAME || String(uid);
}

/** Where {@link loadIdMapping} looks; defaults are the real host's. */
export interface LoadIdMappingOptions {
  /** Default `/etc/subuid`. */
  subuidPath?: string;
  /** Default `/etc/subgid`. */
  subgidPath?: string;
  /** Default `/etc/passwd`. */
  passwdPath?: string;
  /** The PATH to search for newuidmap/newgidmap (default `$PATH`). */
  pathEnv?: string;
  /** Default `Deno.uid()`. */
  uid?: number;
  /** Default `Deno.gid()`. */
  gid?: number;
  /** Overrides the name lookup of {@link currentUserName}. */
  userName?: string;
}

/**
 * Reads the host's subordinate ranges and finds the helpers, then plans the
 * mapping (see {@link planIdMapping}). Root gets `host` mode without reading
 * anything.
 */
export function loadIdMapping(opts: LoadIdMappingOptions = {}): IdMapping {
  const uid = opts.uid ?? Deno.uid() ?? 0;
  const gid = opts.gid ?? Deno.gid() ?? 0;
  if (uid === 0) return planIdMapping({ ...EMPTY_INPUT, uid, gid, userName: "root" });
  const pathEnv = opts.pathEnv ?? Deno.env.get("PATH") ?? "";
  // TRUN_SUBUID_FILE/TRUN_SUBGID_FILE point trun at other files (tests of
  // the fallback); newuidmap still checks the real ones, so they grant nothing.
  const subuidPath = opts.subuidPath ?? Deno.env.get("TRUN_SUBUID_FILE") ?? "/etc/subuid";
  const subgidPath = opts.subgidPath ?? Deno.env.get("TRUN_SUBGID_FILE") ?? "/etc/subgid";
  const nameOpts = opts.passwdPath === undefined ? {} : { passwdPath: opts.passwdPath };
  return planIdMapping({
    uid,
    gid,
    userName: opts.userName ?? currentUserName(uid, nameOpts),
    subuidText: readOrNull(subuidPath),
    subgidText: readOrNull(subgidPath),
    newuidmap: findExecutable("newuidmap", pathEnv),
    newgidmap: findExecutable("newgidmap", pathEnv),
    subuidPath,
    subgidPath,
  });
}

const EMPTY_INPUT: IdMappingInput = {
  uid: 0,
  gid: 0,
  userName: "",
  subuidText: null,
  subgidText: null,
  newuidmap: null,
  newgidmap: null,
};

/**
 * Whether this process is in the initial user namespace: its uid_map is the
 * identity over all ids. Root inside someone else's user namespace (how
 * rootless Podman runs its runtime) is not real root.
 */
export function inInitialUserNamespace(uidMapText?: string): boolean {
  let text = uidMapText;
  if (text === undefined) {
    try {
      text = Deno.readTextFileSync("/proc/self/uid_map");
    } catch {
      return true;
    }
  }
  return /^\s*0\s+0\s+4294967295\s*$/.test(text);
}

/** The text written to `/proc/PID/uid_map` (or gid_map): one `inside outside count` line per range. */
export function formatIdMap(ranges: readonly IdRange[]): string {
  return ranges.map((r) => `${r.inside} ${r.outside} ${r.count}\n`).join("");
}

/**
 * Whether a `/proc/PID/uid_map` (or gid_map) text, read from the initial
 * user namespace, is the mapping `mapping` would write (`host`: the
 * identity of the initial namespace).
 */
export function idMapMatches(text: string, mapping: IdMapping, kind: "uid" | "gid"): boolean {
  const words = (t: string) => t.trim().split(/\s+/).join(" ");
  const want = mapping.mode === "host" ? [HOST_RANGE] : mapping[kind];
  return words(text) === words(formatIdMap(want));
}

/**
 * The host id that container id `id` is, or null when it is unmapped (the
 * kernel then shows it as the overflow id 65534).
 */
export function mapToHost(id: number, ranges: readonly IdRange[]): number | null {
  for (const r of ranges) {
    if (id >= r.inside && id - r.inside < r.count) return r.outside + (id - r.inside);
  }
  return null;
}

/** The container id that host id `id` appears as, or null when it is unmapped. */
export function mapToContainer(id: number, ranges: readonly IdRange[]): number | null {
  for (const r of ranges) {
    if (id >= r.outside && id - r.outside < r.count) return r.inside + (id - r.outside);
  }
  return null;
}

/** Where {@link writeIdMaps} writes; defaults are the real host's. */
export interface WriteIdMapsOptions {
  /** The proc mount (default `/proc`); tests use a temp dir. */
  procRoot?: string;
}

/**
 * Writes the id maps of `pid`, a child just cloned into a new user namespace
 * and waiting to be released. `subordinate`: newuidmap and newgidmap run in
 * parallel (each one only writes its own file). `single`: uid_map, then
 * `deny` to setgroups (the kernel refuses an unprivileged gid_map before
 * it), then gid_map. `host`: nothing to write. Failures throw an Error that
 * names the helper or file, carries the helper's stderr and says what to fix.
 */
export async function writeIdMaps(
  pid: number,
  mapping: IdMapping,
  opts: WriteIdMapsOptions = {},
): Promise<void> {
  const proc = opts.procRoot ?? "/proc";
  if (mapping.mode === "host") return;
  if (mapping.mode === "direct") {
    writeMapFile(`${proc}/${pid}/uid_map`, formatIdMap(mapping.uid), pid);
    writeMapFile(`${proc}/${pid}/gid_map`, formatIdMap(mapping.gid), pid);
    return;
  }
  if (mapping.mode === "single") {
    writeMapFile(`${proc}/${pid}/uid_map`, formatIdMap(mapping.uid), pid);
    try {
      Deno.writeTextFileSync(`${proc}/${pid}/setgroups`, "deny", { create: false });
    } catch (e) {
      // Kernels before 3.19 have no setgroups file and need no "deny".
      if (!(e instanceof Deno.errors.NotFound)) throw mapError(`${proc}/${pid}/setgroups`, e, pid);
    }
    writeMapFile(`${proc}/${pid}/gid_map`, formatIdMap(mapping.gid), pid);
    return;
  }
  const helpers = mapping.helpers;
  if (!helpers) {
    throw new Error("Cannot write subordinate id maps: the mapping names no newuidmap/newgidmap");
  }
  // Both run at once; when both fail, the uid helper's error is the one
  // reported, whichever finished first.
  const results = await Promise.allSettled([
    runHelper(helpers.newuidmap, pid, mapping.uid, "uid"),
    runHelper(helpers.newgidmap, pid, mapping.gid, "gid"),
  ]);
  for (const r of results) if (r.status === "rejected") throw r.reason;
}

function writeMapFile(path: string, text: string, pid: number): void {
  try {
    // One write(2) call: the kernel takes a map only whole, from a single write.
    Deno.writeTextFileSync(path, text, { create: false });
  } catch (e) {
    throw mapError(path, e, pid);
  }
}

function mapError(path: string, e: unknown, pid: number): Error {
  const detail = e instanceof Error ? e.message : String(e);
  const hint = e instanceof Deno.errors.NotFound
    ? `process ${pid} exited before its id maps were written`
    : "a map can be written once, by the user who created the namespace, while the " +
      "process still runs";
  return new Error(`Cannot write "${path}": ${detail}: ${hint}`, { cause: e });
}

async function runHelper(helper: string, pid: number, ranges: readonly IdRange[], kind: string) {
  const args = [String(pid), ...ranges.flatMap((r) => [r.inside, r.outside, r.count].map(String))];
  const [errRead, errWrite] = cloexecPipe();
  let status: ExitStatus;
  let stderrBytes: Uint8Array;
  try {
    const child = spawnProcess(helper, [helper.split("/").pop()!, ...args], [], errWrite);
    closeFd(errWrite);
    [stderrBytes, status] = await Promise.all([readFd(errRead, 4096), waitChild(child)]);
  } finally {
    closeFd(errRead);
  }
  if (status.exited && status.code === 0) return;
  const stderr = new TextDecoder().decode(stderrBytes).trim().replaceAll("\n", "; ");
  const command = `${helper} ${args.join(" ")}`;
  if (status.exited && status.code === 127 && stderr === "") {
    throw new Error(`Cannot run "${helper}": install the uidmap package (apt-get install uidmap)`);
  }
  const how = status.exited ? `exit status ${status.code}` : `killed by signal ${status.signal}`;
  throw new Error(
    `${command} failed (${how}): ${stderr || "no message"}: ` +
      helperHint(helper, stderr, kind, pid),
  );
}

/** What to do about a helper failure, from its message (shadow-utils 4.x wording). */
function helperHint(helper: string, stderr: string, kind: string, pid: number): string {
  if (/not allowed/.test(stderr)) {
    return `the ranges must be listed for this user in /etc/sub${kind}`;
  }
  if (/Could not open proc directory|No such process/.test(stderr)) {
    return `process ${pid} exited before its id maps were written`;
  }
  if (/owned by a different user/.test(stderr)) {
    return `process ${pid} belongs to another user`;
  }
  if (/Operation not permitted/.test(stderr)) {
    let setuid = false;
    try {
      const st = Deno.statSync(helper);
      setuid = ((st.mode ?? 0) & 0o4000) !== 0 && st.uid === 0;
    } catch {
      // Cannot stat it: give the general hint.
    }
    return setuid
      ? `${helper} is setuid root yet was refused: check that its file system is not ` +
        `mounted nosuid and that the namespace has no ${kind}_map yet`
      : `${helper} needs the setuid bit or the cap_set${kind} file capability ` +
        `(chmod u+s ${helper}, or setcap cap_set${kind}+ep ${helper})`;
  }
  return `check /etc/sub${kind} and that ${helper} is setuid root`;
}
