/**
 * Who the container process runs as: turns `-u/--user user[:group]` and
 * `--group-add` into numeric ids against the image's `/etc/passwd` and
 * `/etc/group` (passwd(5), group(5)), with the semantics of runc's
 * `user.GetExecUser` and Docker's `getUser` so `trun run -u` behaves like
 * `docker run -u`.
 *
 * This module only reads text. The caller opens the files inside the rootfs
 * without following symlinks out of it (a hostile image could point
 * `/etc/passwd` at the host's) and passes `null` for a file that is absent.
 */

/** One well-formed line of `/etc/passwd`. */
export interface PasswdEntry {
  /** Login name. */
  name: string;
  /** Password field (usually "x"); kept for completeness. */
  password: string;
  /** Numeric user id. */
  uid: number;
  /** Numeric primary group id. */
  gid: number;
  /** Comment (GECOS) field. */
  gecos: string;
  /** Home directory; may be empty in a sloppy file. */
  home: string;
  /** Login shell. */
  shell: string;
}

/** One well-formed line of `/etc/group`. */
export interface GroupEntry {
  /** Group name. */
  name: string;
  /** Password field (usually "x"). */
  password: string;
  /** Numeric group id. */
  gid: number;
  /** Names of the users listed as members (supplementary membership). */
  members: string[];
}

/** The text of the image's account files; `null` when the file does not exist. */
export interface AccountFiles {
  /** Contents of `/etc/passwd`, or `null` when absent. */
  passwd: string | null;
  /** Contents of `/etc/group`, or `null` when absent. */
  group: string | null;
}

/** The identity the container process gets, ready for setgroups/setgid/setuid. */
export interface ResolvedUser {
  /** User id to setuid() to. */
  uid: number;
  /** Primary group id to setgid() to. */
  gid: number;
  /**
   * The full list for setgroups(): the primary gid first, then the user's
   * supplementary groups from `/etc/group`, then `--group-add`, without
   * duplicates. The primary gid is included as Docker does since
   * CVE-2022-36109, so dropping a supplementary group cannot be used to
   * escape a restriction on the primary one.
   */
  additionalGids: number[];
  /** Home directory for `$HOME`: the passwd entry's, else "/". */
  home: string;
  /** Login name, when the user has a passwd entry. */
  name?: string;
}

/** Largest uid/gid accepted in `-u` and `--group-add`, as runc (and so Docker) allows. */
export const MAX_ID = 2147483647;

/** Largest id accepted in the files themselves: (uid_t)-1 is reserved by the kernel. */
const MAX_FILE_ID = 4294967294;

const DECIMAL = /^[0-9]+$/;

/** Parses a decimal id field of an account file; `undefined` when malformed. */
function fileId(field: string | undefined): number | undefined {
  if (field === undefined || !DECIMAL.test(field)) return undefined;
  const n = Number(field);
  return n <= MAX_FILE_ID ? n : undefined;
}

/**
 * The meaningful lines of an account file. Like glibc's nss_files we skip
 * blank lines, `#` comments and the NIS compat entries (`+name`, `-name`)
 * that only have meaning to a "compat" NSS backend a container does not run.
 */
function accountLines(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("+") || line.startsWith("-")) {
      continue;
    }
    out.push(line);
  }
  return out;
}

/**
 * Parses `/etc/passwd` text (`name:password:uid:gid:gecos:home:shell`).
 * Tolerant like libc: a malformed line (no name, fewer than four fields, a
 * uid or gid that is not a decimal number) is skipped instead of failing the
 * whole file. runc instead reads a bad uid as 0, which would make a broken
 * line alias root; skipping is the safer reading. Missing trailing fields
 * are empty strings.
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of accountLines(text)) {
    const fields = line.split(":");
    const [name = "", password = "", uidField, gidField, gecos = "", home = "", shell = ""] =
      fields;
    const uid = fileId(uidField);
    const gid = fileId(gidField);
    if (name === "" || uid === undefined || gid === undefined) continue;
    entries.push({ name, password, uid, gid, gecos, home, shell });
  }
  return entries;
}

/**
 * Parses `/etc/group` text (`name:password:gid:member,member`). Malformed
 * lines (no name, fewer than three fields, a non-decimal gid) are skipped;
 * empty member names (`a,,b`, a trailing comma) are dropped.
 */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of accountLines(text)) {
    const [name = "", password = "", gidField, memberField = ""] = line.split(":");
    const gid = fileId(gidField);
    if (name === "" || gid === undefined) continue;
    const members = memberField.split(",").map((m) => m.trim()).filter((m) => m !== "");
    entries.push({ name, password, gid, members });
  }
  return entries;
}

/**
 * Parses a decimal id the user typed, enforcing runc's range. `option`
 * names what the user typed it in (`user "1:2"`, `--group-add "2"`).
 */
function requestedId(value: string, what: "user" | "group", option: string): number {
  const n = Number(value);
  if (n > MAX_ID) {
    throw new Error(
      `Invalid ${option}: ${what} id ${value} is out of range; use an id from 0 to ${MAX_ID}`,
    );
  }
  return n;
}

/** The error for a group name that the image does not define. */
function unknownGroup(groupName: string, files: AccountFiles): Error {
  const why = files.group === null
    ? "the image has no /etc/group; use a numeric gid"
    : "no matching entries in group file";
  return new Error(`Unable to find group "${groupName}": ${why}`);
}

/**
 * Resolves `--group-add` values, following runc's `GetAdditionalGroups`: each
 * value names the first group (in file order) whose name or decimal gid
 * equals it; failing that a number is taken as a gid even without an entry.
 */
function groupAddGids(
  values: readonly string[],
  groups: GroupEntry[],
  files: AccountFiles,
): number[] {
  const gids: number[] = [];
  for (const value of values) {
    const match = groups.find((g) => g.name === value || String(g.gid) === value);
    if (match) {
      gids.push(match.gid);
    } else if (DECIMAL.test(value)) {
      gids.push(requestedId(value, "group", `--group-add "${value}"`));
    } else {
      throw unknownGroup(value, files);
    }
  }
  return gids;
}

/**
 * Resolves `-u/--user` (`user`, `uid`, `user:group`, `uid:gid`, `:group`, or
 * empty for the image default) and `--group-add` against the image's account
 * files, as `docker run` does:
 *
 * - empty: uid 0, with root's passwd entry (its gid, home and name) if any;
 * - a number is always a uid (even when a user has that name) and need not
 *   exist: without an entry the gid is 0 (`docker run -u 1234 busybox id`
 *   prints `uid=1234 gid=0(root)`) and the home is "/";
 * - a name must exist in `/etc/passwd`; the first matching line wins;
 * - `:group` is a gid (number, need not exist) or a name that must exist in
 *   `/etc/group`, and replaces the passwd entry's gid;
 * - supplementary groups are the groups listing the user's name as a member,
 *   but only when no group was given: runc treats `user:group` as a complete
 *   statement of the group identity ("supplementary group ids only make
 *   sense in the implicit form"), and Docker inherits that;
 * - `--group-add` values (names or gids) are always added.
 *
 * Throws when a named user or group is missing, the spec has more than one
 * ":", or a numeric id is out of range.
 */
export function resolveUser(
  spec: string | undefined,
  files: AccountFiles,
  groupAdd: readonly string[] = [],
): ResolvedUser {
  const text = spec ?? "";
  const parts = text.split(":");
  if (parts.length > 2) {
    throw new Error(`Invalid user "${text}": use "user", "uid", "user:group" or "uid:gid"`);
  }
  const userArg = parts[0] ?? "";
  const groupArg = parts[1] ?? "";

  const users = files.passwd === null ? [] : parsePasswd(files.passwd);
  let entry: PasswdEntry | undefined;
  let uid = 0;
  if (userArg === "") {
    entry = users.find((u) => u.uid === 0);
  } else if (DECIMAL.test(userArg)) {
    uid = requestedId(userArg, "user", `user "${text}"`);
    entry = users.find((u) => u.uid === uid);
  } else {
    entry = users.find((u) => u.name === userArg);
    if (!entry) {
      const why = files.passwd === null
        ? "the image has no /etc/passwd; use a numeric uid"
        : "no matching entries in passwd file";
      throw new Error(`Unable to find user "${userArg}": ${why}`);
    }
  }

  const resolved: ResolvedUser = { uid, gid: 0, additionalGids: [], home: "/" };
  if (entry) {
    resolved.uid = entry.uid;
    resolved.gid = entry.gid;
    // An empty home field would give HOME="" and make `cd` go nowhere; "/"
    // is what a missing entry gets, so treat both alike.
    if (entry.home !== "") resolved.home = entry.home;
    resolved.name = entry.name;
  }

  // Only parse /etc/group when something needs it: most runs have no -u.
  const needGroups = groupArg !== "" || entry !== undefined || groupAdd.length > 0;
  const groups = needGroups && files.group !== null ? parseGroup(files.group) : [];

  let supplementary: number[] = [];
  if (groupArg !== "") {
    if (DECIMAL.test(groupArg)) {
      resolved.gid = requestedId(groupArg, "group", `user "${text}"`);
    } else {
      const group = groups.find((g) => g.name === groupArg);
      if (!group) throw unknownGroup(groupArg, files);
      resolved.gid = group.gid;
    }
  } else if (entry) {
    const name = entry.name;
    supplementary = groups.filter((g) => g.members.includes(name)).map((g) => g.gid);
  }

  const all = [resolved.gid, ...supplementary, ...groupAddGids(groupAdd, groups, files)];
  resolved.additionalGids = [...new Set(all)];
  return resolved;
}
