/**
 * Compiles a `ContainerConfig` into child programs: the ordered lists of
 * raw system calls the cloned child makes, up to execve. Pure: the result is
 * data, unit-tested by reading it. Two programs:
 *
 * - `createProgram`: the container's first process, from waiting for its id
 *   maps to execve (optionally blocking on the exec fifo until `start`).
 * - `joinProgram`: a process joining a running container (`exec`):
 *   setns(2) into its namespaces, user namespace first, then a second fork
 *   so that the process is inside the PID namespace.
 *
 * Mount targets inside the root are opened with openat2(2)
 * `RESOLVE_IN_ROOT` relative to the new root and mounted with the fd-based
 * mount API (fsopen(2), fsmount(2), open_tree(2), move_mount(2),
 * mount_setattr(2)), so a symlink in the image can never redirect a mount
 * to the host side. Targets under /proc, /sys and /dev refuse symlinks
 * altogether (`RESOLVE_NO_SYMLINKS`).
 */
import { type ChildOp, execTail, type OpArg } from "../../ffi/child_program.ts";
import { Errno } from "../../ffi/errno.ts";
import {
  AF,
  AT,
  CAP_LAST_CAP,
  CLONE,
  encodeCapData,
  encodeCapHeader,
  encodeDev,
  encodeIfreqFlags,
  encodeMountAttr,
  encodeOpenHow,
  encodeRlimit,
  encodeWinsize,
  IFF,
  KEY_PERM,
  KEY_SPEC,
  KEYCTL,
  MOUNT_ATTR,
  MOUNT_ATTR_SIZE,
  MS,
  O,
  OPEN_HOW_SIZE,
  PR,
  RESOLVE,
  S,
  SECCOMP,
  SIGNALS,
  SIOC,
  SOCK,
  TTY,
} from "../../ffi/syscalls.ts";
import {
  type ContainerConfig,
  type DevicePlan,
  joinsFirst,
  type MountAttrs,
  type MountPlan,
  type ProcessConfig,
  type Propagation,
} from "./config.ts";
import type { NamespaceType } from "../spec/types.ts";
import type { SeccompPlan } from "./seccomp_config.ts";
import { compiledSeccomp, seccompFlags } from "./seccomp_bpf.ts";

/** Symlinks in a container's tmpfs /dev: name → link text. */
export const DEV_SYMLINKS: Readonly<Record<string, string>> = {
  fd: "/proc/self/fd",
  stdin: "/proc/self/fd/0",
  stdout: "/proc/self/fd/1",
  stderr: "/proc/self/fd/2",
  ptmx: "pts/ptmx",
  core: "/proc/kcore",
};

/** A 16-byte record the child writes on the error pipe: "my user namespace exists, write its maps". */
export const MAPS_RECORD = new Uint8Array(new BigInt64Array([-4n, 0n]).buffer);

/** A 16-byte record the child writes on the error pipe: "created, waiting for start". */
export const READY_RECORD = new Uint8Array(
  new BigInt64Array([-3n, 0n]).buffer,
);

/** clone(2) flags of the namespace types. */
export const NAMESPACE_FLAGS: Readonly<Record<NamespaceType, number>> = {
  user: CLONE.NEWUSER,
  mount: CLONE.NEWNS,
  pid: CLONE.NEWPID,
  uts: CLONE.NEWUTS,
  ipc: CLONE.NEWIPC,
  network: CLONE.NEWNET,
  cgroup: CLONE.NEWCGROUP,
  time: 0x80,
};

/** The file names under /proc/PID/ns/ of the namespace types. */
export const NAMESPACE_FILES: Readonly<Record<NamespaceType, string>> = {
  user: "user",
  mount: "mnt",
  pid: "pid",
  uts: "uts",
  ipc: "ipc",
  network: "net",
  cgroup: "cgroup",
  time: "time",
};

/** How the root filesystem is provided. */
export type RootfsSource =
  /** `root.path` is a directory; it is bind-mounted onto itself. */
  | { kind: "path" }
  /**
   * An overlay of read-only layers with a writable layer kept on disk
   * (`upper`, `work`: a container that outlives its command), merged at
   * `root.path`, a directory that exists.
   */
  | { kind: "layered"; lowers: string[]; upper: string; work: string; lowerdirAppend: boolean };

/** What the host says about a path, asked before compiling. */
export type PathKind = "dir" | "file" | null;

/** The container's terminal, received by whoever listens on the console socket. */
export interface ConsoleFds {
  /** The connected console socket (in the child's numbering). */
  socket: number;
  /** A descriptor number the parent keeps reserved; the master is dup'ed there to be sent. */
  slot: number;
}

/** Descriptors and choices of `createProgram`. */
export interface CreateProgramInput {
  /** The validated config. */
  config: ContainerConfig;
  /** The executable candidates (execvp over the process's PATH). */
  executables: string[];
  /** How the root is provided. */
  rootfs: RootfsSource;
  /** Read end of the sync pipe: one byte means "id maps written, go on". */
  syncRead: number;
  /**
   * When the process joins before it creates (`joinsFirst`) and makes a
   * new user namespace: the read end of a second pipe, "maps written".
   */
  mapsSync?: number;
  /** The error pipe's write end (the ready record goes there too). */
  errFd: number;
  /** Namespaces to join, as descriptors the child inherits. */
  joinFds: { type: NamespaceType; fd: number }[];
  /** `process.terminal`: where to send the pty master. */
  console?: ConsoleFds;
  /** Without a terminal: give the process /dev/null as stdin (`run` without `-i`). */
  stdinNull: boolean;
  /** Descriptors to make the process's stdin, stdout and stderr (a monitor's pipes). */
  stdio?: [number, number, number];
  /**
   * An O_PATH descriptor of the exec fifo: the child reports "created"
   * and blocks opening it for writing until `start` opens it for reading.
   * Absent: the process runs at once (`trun run`).
   */
  execFifo?: number;
  /** A pipe pair for the createContainer hooks: write "ready", then read "go". */
  hookSync?: { ready: number; go: number };
  /** Kill the container when the creating process dies (run in-process). */
  dieWithParent: boolean;
  /** Whether setgroups(2) is allowed (not in a user namespace whose setgroups is "deny"). */
  setgroups: boolean;
  /** Create device nodes (real root, no new user namespace) instead of binding the host's. */
  createDevices?: boolean;
  /** The name of the container's own session keyring (`sessionKeyringName`); absent: keep the caller's. */
  sessionKeyring?: string;
  /** Host facts: what a host path is (bind sources). */
  kindOf: (hostPath: string) => PathKind;
  /** What a path inside the container is (masked and read-only paths); null skips it. */
  containerPathKind: (path: string) => PathKind;
}

function splitPath(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

/** Escapes an overlay lowerdir entry (`:` separates layers, `\` escapes). */
export function escapeOverlayPath(path: string): string {
  return path.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
}

function attrBits(a: MountAttrs): number {
  let bits = (a.readOnly ? MOUNT_ATTR.RDONLY : 0) | (a.nosuid ? MOUNT_ATTR.NOSUID : 0) |
    (a.nodev ? MOUNT_ATTR.NODEV : 0) | (a.noexec ? MOUNT_ATTR.NOEXEC : 0) |
    (a.nodiratime ? MOUNT_ATTR.NODIRATIME : 0);
  if (a.atime === "noatime") bits |= MOUNT_ATTR.NOATIME;
  if (a.atime === "strictatime") bits |= MOUNT_ATTR.STRICTATIME;
  return bits;
}

const PROPAGATION_FLAGS: Record<Propagation, number> = {
  private: MS.PRIVATE,
  shared: MS.SHARED,
  slave: MS.SLAVE,
  unbindable: MS.UNBINDABLE,
};

/** Whether symlinks on the way to `target` are refused outright (kernel filesystems). */
function strictTarget(target: string): boolean {
  return /^\/(proc|sys|dev)(\/|$)/.test(target);
}

/** Builds ops; keeps a counter for unique fd names. */
export class ProgramBuilder {
  /** The ops so far. */
  readonly ops: ChildOp[] = [];
  private n = 0;

  /** A fresh name for a stored result. */
  fresh(prefix: string): string {
    return `${prefix}${this.n++}`;
  }

  /** Appends one op. */
  op(op: ChildOp): void {
    this.ops.push(op);
  }

  /** Closes a stored descriptor. */
  close(ref: string): void {
    this.op({ call: "close", args: [{ ref }], step: "closing a setup descriptor" });
  }

  private openHow(flags: number, mode: number, resolve: number): OpArg {
    return { bytes: encodeOpenHow(flags, mode, resolve) };
  }

  /**
   * Opens `path` inside the root (fd `root`) as an O_PATH fd, creating it
   * (and missing parents) first. Every component is resolved in the root;
   * with `noSymlinks` any symlink on the way is refused (ELOOP).
   */
  openTarget(path: string, type: "dir" | "file", noSymlinks: boolean, what: string): string {
    const resolve = RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS |
      (noSymlinks ? RESOLVE.NO_SYMLINKS : 0);
    const comps = splitPath(path);
    for (let i = 0; i < comps.length; i++) {
      const parentPath = comps.slice(0, i).join("/") || ".";
      const parent = this.fresh("dir");
      const shown = "/" + comps.slice(0, i + 1).join("/");
      this.op({
        call: "openat2",
        args: [
          { ref: "root" },
          { str: parentPath },
          this.openHow(O.PATH | O.DIRECTORY | O.CLOEXEC, 0, resolve),
          OPEN_HOW_SIZE,
        ],
        produces: parent,
        step: `${what}: opening "/${comps.slice(0, i).join("/")}"`,
      });
      const last = i === comps.length - 1;
      if (last && type === "file") {
        const f = this.fresh("file");
        this.op({
          call: "openat2",
          args: [
            { ref: parent },
            { str: comps[i]! },
            this.openHow(O.CREAT | O.RDONLY | O.CLOEXEC, 0o644, resolve),
            OPEN_HOW_SIZE,
          ],
          produces: f,
          step: `${what}: creating "${shown}"`,
        });
        this.close(f);
      } else {
        this.op({
          call: "mkdirat",
          args: [{ ref: parent }, { str: comps[i]! }, 0o755],
          okErrno: Errno.EEXIST,
          step: `${what}: creating "${shown}"`,
        });
      }
      this.close(parent);
    }
    return this.openInRoot(path, O.PATH | O.CLOEXEC | (type === "dir" ? O.DIRECTORY : 0), {
      noSymlinks,
      what: `${what}: opening "${path}"`,
    });
  }

  /** Opens an existing `path` inside the root with `flags`. */
  openInRoot(
    path: string,
    flags: number,
    opts: { noSymlinks: boolean; what: string },
  ): string {
    const target = this.fresh("target");
    this.op({
      call: "openat2",
      args: [
        { ref: "root" },
        { str: splitPath(path).join("/") || "." },
        this.openHow(
          flags,
          0,
          RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS | (opts.noSymlinks ? RESOLVE.NO_SYMLINKS : 0),
        ),
        OPEN_HOW_SIZE,
      ],
      produces: target,
      step: opts.what,
    });
    return target;
  }

  /** Moves a detached mount (fd `mnt`) onto the opened target. */
  moveMount(mnt: string, target: string, what: string): void {
    this.op({
      call: "move_mount",
      args: [
        { ref: mnt },
        { str: "" },
        { ref: target },
        { str: "" },
        AT.MOVE_MOUNT_F_EMPTY_PATH | AT.MOVE_MOUNT_T_EMPTY_PATH,
      ],
      step: what,
    });
    this.close(mnt);
    this.close(target);
  }

  /**
   * Creates a detached mount of a new `fstype` filesystem (fsopen, one
   * fsconfig per option, create, fsmount) and returns the name of its fd.
   */
  newFilesystem(
    fstype: string,
    options: [string, string | null][],
    attrs: number,
    what: string,
  ): string {
    const fs = this.fresh("fs");
    this.op({
      call: "fsopen",
      args: [{ str: fstype }, AT.FSOPEN_CLOEXEC],
      produces: fs,
      step: what,
    });
    for (const [key, value] of options) {
      this.op({
        call: "fsconfig",
        args: value === null
          ? [{ ref: fs }, AT.FSCONFIG_SET_FLAG, { str: key }, 0, 0]
          : [{ ref: fs }, AT.FSCONFIG_SET_STRING, { str: key }, { str: value }, 0],
        step: `${what}: option ${value === null ? key : `${key}=${value}`}`,
      });
    }
    this.op({ call: "fsconfig", args: [{ ref: fs }, AT.FSCONFIG_CMD_CREATE, 0, 0, 0], step: what });
    const mnt = this.fresh("mnt");
    this.op({
      call: "fsmount",
      args: [{ ref: fs }, AT.FSMOUNT_CLOEXEC, attrs],
      produces: mnt,
      step: what,
    });
    this.close(fs);
    return mnt;
  }

  /** A detached copy of the host tree at `source` (open_tree(2) with OPEN_TREE_CLONE). */
  cloneTree(source: OpArg, recursive: boolean, what: string, extraFlags = 0): string {
    const tree = this.fresh("tree");
    this.op({
      call: "open_tree",
      args: [
        typeof source === "object" && "ref" in source ? source : AT.FDCWD,
        typeof source === "object" && "ref" in source ? { str: "" } : source,
        AT.OPEN_TREE_CLONE | AT.OPEN_TREE_CLOEXEC | (recursive ? AT.RECURSIVE : 0) | extraFlags,
      ],
      produces: tree,
      step: what,
    });
    return tree;
  }

  /** Sets mount attributes on a mount given by fd. */
  setAttr(
    ref: string,
    fields: { set: number; clear?: number; propagation?: number },
    recursive: boolean,
    what: string,
  ): void {
    this.op({
      call: "mount_setattr",
      args: [
        { ref },
        { str: "" },
        AT.EMPTY_PATH | (recursive ? AT.RECURSIVE : 0),
        { bytes: encodeMountAttr(fields) },
        MOUNT_ATTR_SIZE,
      ],
      step: what,
    });
  }

  /** Performs one planned mount. */
  mount(spec: MountPlan, sourceKind: PathKind): void {
    const strict = strictTarget(spec.target);
    let what: string;
    if (spec.kind === "fs") {
      what = `mounting ${spec.fstype} on "${spec.target}"`;
      const target = this.openTarget(spec.target, "dir", strict, what);
      const mnt = this.newFilesystem(spec.fstype, spec.options, attrBits(spec.attrs), what);
      this.moveMount(mnt, target, what);
    } else {
      what = `bind-mounting "${spec.source}" on "${spec.target}"`;
      const target = this.openTarget(
        spec.target,
        sourceKind === "dir" ? "dir" : "file",
        strict,
        what,
      );
      const tree = this.cloneTree({ str: spec.source }, spec.recursive, what);
      const bits = attrBits(spec.attrs);
      if (bits !== 0) {
        this.setAttr(
          tree,
          { set: bits, clear: spec.attrs.atime ? MOUNT_ATTR.ATIME_MASK : 0 },
          spec.recursive,
          `${what}: setting mount attributes`,
        );
      }
      this.moveMount(tree, target, what);
    }
    if (spec.propagation) {
      // The propagation of a mount is set once it is attached: reopen the
      // target, which now resolves to the new mount.
      const again = this.openInRoot(spec.target, O.PATH | O.CLOEXEC, {
        noSymlinks: strict,
        what: `${what}: setting ${spec.propagation.type} propagation`,
      });
      this.setAttr(
        again,
        { set: 0, propagation: PROPAGATION_FLAGS[spec.propagation.type] },
        spec.propagation.recursive,
        `${what}: setting ${spec.propagation.type} propagation`,
      );
      this.close(again);
    }
  }

  /** Binds a host device node into the container's /dev (rootless cannot mknod). */
  device(d: DevicePlan, create: boolean): void {
    const what = `providing the device "${d.path}"`;
    if (create) {
      // As real root: a node of its own, as runc makes it (the umask must
      // not trim its mode, hence the chmod).
      const cut = d.path.lastIndexOf("/");
      const dir = this.openTarget(d.path.slice(0, cut) || "/", "dir", true, what);
      const name = d.path.slice(cut + 1);
      const dev = encodeDev(d.major, d.minor);
      if (dev === null) throw new Error(`${what}: ${d.major}:${d.minor} is not a device number`);
      const mode = d.mode ?? 0o666;
      this.op({
        call: "mknodat",
        args: [{ ref: dir }, { str: name }, (d.type === "b" ? S.IFBLK : S.IFCHR) | mode, dev],
        step: `${what}: mknod`,
      });
      this.op({ call: "fchmodat", args: [{ ref: dir }, { str: name }, mode, 0], step: what });
      this.op({
        call: "fchownat",
        args: [{ ref: dir }, { str: name }, d.uid ?? 0, d.gid ?? 0, AT.SYMLINK_NOFOLLOW],
        step: what,
      });
      this.close(dir);
      return;
    }
    const target = this.openTarget(d.path, "file", true, what);
    const tree = this.cloneTree({ str: d.path }, false, what);
    this.setAttr(tree, { set: MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOEXEC }, false, what);
    this.moveMount(tree, target, what);
  }

  /** Writes a string to a file inside the root (sysctl, oom_score_adj). */
  writeFile(path: string, text: string, what: string, fromRoot: boolean): void {
    const fd = this.fresh("file");
    if (fromRoot) {
      this.op({
        call: "openat2",
        args: [
          { ref: "root" },
          { str: splitPath(path).join("/") },
          this.openHow(O.WRONLY | O.CLOEXEC, 0, RESOLVE.IN_ROOT | RESOLVE.NO_SYMLINKS),
          OPEN_HOW_SIZE,
        ],
        produces: fd,
        step: `${what}: opening "${path}"`,
      });
    } else {
      this.op({
        call: "openat",
        args: [AT.FDCWD, { str: path }, O.WRONLY | O.CLOEXEC],
        produces: fd,
        step: `${what}: opening "${path}"`,
      });
    }
    const bytes = new TextEncoder().encode(text);
    this.op({ call: "write", args: [{ ref: fd }, { bytes }, bytes.length], step: what });
    this.close(fd);
  }

  /**
   * The process's identity and privileges, in runc's order: rlimits and
   * oom_score_adj while still privileged, bounding set, keep-caps across
   * the uid change, groups, gid, uid, then capset and the ambient set, and
   * no_new_privs last.
   */
  identity(p: ProcessConfig, setgroups: boolean): void {
    for (const r of p.rlimits) {
      this.op({
        call: "prlimit64",
        args: [0, r.resource, { bytes: encodeRlimit(r.soft, r.hard) }, 0],
        step: `setting ${r.name} to ${r.soft}/${r.hard}`,
      });
    }
    if (p.oomScoreAdj !== undefined) {
      this.writeFile(
        "/proc/self/oom_score_adj",
        String(p.oomScoreAdj),
        "setting oom_score_adj",
        false,
      );
    }
    if (p.umask !== undefined) {
      this.op({ call: "umask", args: [p.umask], step: `setting the umask` });
    }
    const keep = new Set(p.capabilities.bounding);
    for (let cap = 0; cap <= CAP_LAST_CAP + 23; cap++) {
      if (keep.has(cap)) continue;
      // EINVAL: the kernel knows fewer capabilities.
      this.op({
        call: "prctl",
        args: [PR.CAPBSET_DROP, cap, 0, 0, 0],
        okErrno: Errno.EINVAL,
        step: `dropping capability ${cap} from the bounding set`,
      });
    }
    this.op({
      call: "prctl",
      args: [PR.SET_KEEPCAPS, 1, 0, 0, 0],
      step: "keeping capabilities across the user switch",
    });
    if (setgroups) {
      const gids = new Uint32Array(p.additionalGids);
      this.op({
        call: "setgroups",
        args: [gids.length, { bytes: new Uint8Array(gids.buffer) }],
        step: `setting supplementary groups ${JSON.stringify(p.additionalGids)}`,
      });
    }
    this.op({
      call: "setresgid",
      args: [p.gid, p.gid, p.gid],
      step: `switching to group ${p.gid}`,
    });
    this.op({ call: "setresuid", args: [p.uid, p.uid, p.uid], step: `switching to user ${p.uid}` });
    this.op({ call: "prctl", args: [PR.SET_KEEPCAPS, 0, 0, 0, 0], step: "clearing keep-caps" });
    const mask = (caps: number[]) => caps.reduce((m, c) => m | (1n << BigInt(c)), 0n);
    this.op({
      call: "capset",
      args: [
        { bytes: encodeCapHeader() },
        {
          bytes: encodeCapData({
            effective: mask(p.capabilities.effective),
            permitted: mask(p.capabilities.permitted),
            inheritable: mask(p.capabilities.inheritable),
          }),
        },
      ],
      step: "setting the capability sets (capset)",
    });
    this.op({
      call: "prctl",
      args: [PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL, 0, 0, 0],
      step: "clearing the ambient capabilities",
    });
    for (const cap of p.capabilities.ambient) {
      this.op({
        call: "prctl",
        args: [PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE, cap, 0, 0],
        step: `raising ambient capability ${cap}`,
      });
    }
    if (p.noNewPrivileges) {
      this.op({
        call: "prctl",
        args: [PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0],
        step: "setting no_new_privs",
      });
    }
  }

  /**
   * Installs the seccomp filter (seccomp(2) SECCOMP_SET_MODE_FILTER). The
   * kernel takes it from a process with no_new_privs set, or with
   * CAP_SYS_ADMIN in its user namespace: so, as runc does, without
   * no_new_privs it goes in before the capabilities are dropped (the ops
   * after it are calls the default profile allows), and with no_new_privs
   * as late as possible, just before the exec tail.
   */
  seccomp(plan: SeccompPlan): void {
    this.op({
      call: "seccomp",
      args: [SECCOMP.SET_MODE_FILTER, seccompFlags(plan), { seccompFilter: compiledSeccomp(plan) }],
      step: "installing the seccomp filter",
    });
  }

  /**
   * The terminal: a pty from the container's own devpts (so `tty` names a
   * device the container sees), its master sent over the console socket
   * (SCM_RIGHTS), its slave made stdin, stdout, stderr and the controlling
   * terminal. Runs after pivot_root, where /dev/pts/ptmx is the container's.
   */
  terminal(c: ConsoleFds, size: ProcessConfig["consoleSize"]): void {
    this.op({
      call: "openat",
      args: [AT.FDCWD, { str: "/dev/pts/ptmx" }, O.RDWR | O.NOCTTY | O.CLOEXEC],
      produces: "ptmx",
      step: `opening the container's "/dev/pts/ptmx" for a terminal`,
    });
    this.op({
      call: "ioctl",
      args: [{ ref: "ptmx" }, TTY.SPTLCK, { bytes: new Uint8Array(4) }],
      step: "unlocking the pseudo-terminal",
    });
    this.op({
      call: "ioctl",
      args: [{ ref: "ptmx" }, TTY.GPTPEER, O.RDWR | O.NOCTTY | O.CLOEXEC],
      produces: "pts",
      step: "opening the pseudo-terminal's slave",
    });
    if (size && size.rows > 0 && size.columns > 0) {
      this.op({
        call: "ioctl",
        args: [{ ref: "ptmx" }, TTY.SWINSZ, { bytes: encodeWinsize(size.rows, size.columns) }],
        step: "setting the terminal size",
      });
    }
    this.op({
      call: "dup3",
      args: [{ ref: "ptmx" }, c.slot, O.CLOEXEC],
      step: "preparing the terminal to be sent",
    });
    this.op({
      call: "sendmsg",
      args: [c.socket, { sendFd: { fd: c.slot, name: "/dev/ptmx" } }, 0],
      step: "sending the terminal over the console socket",
    });
    this.op({ call: "close", args: [c.slot], step: "closing the sent terminal" });
    this.close("ptmx");
    this.op({ call: "close", args: [c.socket], step: "closing the console socket" });
    for (const fd of [0, 1, 2]) {
      this.op({ call: "dup2", args: [{ ref: "pts" }, fd], step: `making the terminal fd ${fd}` });
    }
    this.op({
      call: "ioctl",
      args: [0, TTY.SCTTY, 0],
      step: "making the terminal the controlling terminal",
    });
    this.close("pts");
  }

  /**
   * Sets the process's dumpable flag (prctl(2) PR_SET_DUMPABLE). While it
   * is clear, /proc/PID/exe, mem, fd, cwd, root and environ of the process
   * can only be opened with CAP_SYS_PTRACE in the user namespace trun was
   * started in, which no container process has (not even root in a
   * rootless container, although it runs as the same host user): trun's
   * binary and memory stay out of reach while the process is a copy of
   * trun (CVE-2019-5736). execve(2) sets it again for the program (unless
   * that program is set-id or unreadable), so the exec'd process is as
   * visible as any other.
   */
  dumpable(on: boolean, why: string): void {
    this.op({ call: "prctl", args: [PR.SET_DUMPABLE, on ? 1 : 0, 0, 0, 0], step: why });
  }

  /**
   * Opens "/" as an O_PATH descriptor named `name`: after setns(2) into a
   * mount namespace, or after pivot_root, that is the container's root.
   */
  openRoot(name: string, what: string): void {
    this.op({
      call: "openat",
      args: [AT.FDCWD, { str: "/" }, O.PATH | O.DIRECTORY | O.CLOEXEC],
      produces: name,
      step: what,
    });
  }

  /**
   * Enters the working directory `cwd` as a path inside the root `root`
   * (an fd name), then closes `root`. openat2(2) with RESOLVE_IN_ROOT keeps
   * `..` and absolute symlinks inside the root, and RESOLVE_NO_MAGICLINKS
   * refuses /proc/PID/fd/N, /proc/PID/cwd and the like, which could name a
   * directory outside it (CVE-2024-21626: a leaked host descriptor used as
   * the working directory). The working directory is then known to be
   * inside the root. Done after the user switch: the lookup needs the
   * process's own search permissions, as chdir(2) would.
   */
  workingDirectory(cwd: string, root: string): void {
    const what = `changing to the working directory "${cwd}"`;
    const dir = this.fresh("cwd");
    this.op({
      call: "openat2",
      args: [
        { ref: root },
        { str: splitPath(cwd).join("/") || "." },
        this.openHow(
          O.PATH | O.DIRECTORY | O.CLOEXEC,
          0,
          RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS,
        ),
        OPEN_HOW_SIZE,
      ],
      produces: dir,
      step: what,
    });
    this.op({ call: "fchdir", args: [{ ref: dir }], step: what });
    this.close(dir);
    this.close(root);
  }

  /** stdin from /dev/null, as `docker run` without `-i`. */
  stdinNull(): void {
    this.op({
      call: "openat",
      args: [AT.FDCWD, { str: "/dev/null" }, O.RDONLY | O.CLOEXEC],
      produces: "devnull",
      step: `opening "/dev/null" for stdin`,
    });
    this.op({ call: "dup2", args: [{ ref: "devnull" }, 0], step: "setting stdin to /dev/null" });
  }
}

/** close_range(2) over every descriptor from 3 up but those in `keep`. */
export function closeAllBut(b: ProgramBuilder, keep: readonly number[]): void {
  const fds = [...new Set(keep.filter((fd) => fd >= 3))].sort((x, y) => x - y);
  let from = 3;
  for (const fd of [...fds, 0x80000000]) {
    if (fd > from) {
      b.op({
        call: "close_range",
        args: [from, Math.min(fd - 1, 0xffffffff), 0],
        step: "closing inherited descriptors",
      });
    }
    from = fd + 1;
  }
}

/**
 * The fsconfig(2) options of a container root's overlay: the lower layers
 * (top first), one `lowerdir+` each (Linux ≥ 6.8, where a colon-separated
 * `lowerdir` through fsconfig(2) is refused) else one escaped list; the
 * writable layer; and `userxattr`, so that whiteouts and opaque
 * directories use `user.overlay.*` (mountable in a user namespace). A
 * null value is a flag.
 */
export function overlayOptions(
  lowers: readonly string[],
  upper: string,
  work: string,
  lowerdirAppend: boolean,
): [string, string | null][] {
  return [
    ...(lowerdirAppend
      ? lowers.map((l): [string, string] => ["lowerdir+", l])
      : [["lowerdir", lowers.map(escapeOverlayPath).join(":")] as [string, string]]),
    ["upperdir", upper],
    ["workdir", work],
    ["userxattr", null],
  ];
}

/** The root mount: an overlay of the layers, or `root.path` bound onto itself. */
function mountRoot(b: ProgramBuilder, rootPath: string, rootfs: RootfsSource): void {
  if (rootfs.kind === "layered") {
    const { upper, work } = rootfs;
    const what = `mounting the overlay root on "${rootPath}"`;
    // nodev: a device node an image layer carries is never opened through
    // the root (trun has no device cgroup; /dev is a tmpfs of its own).
    const overlay = b.newFilesystem(
      "overlay",
      overlayOptions(rootfs.lowers, upper, work, rootfs.lowerdirAppend),
      MOUNT_ATTR.NODEV,
      what,
    );
    b.op({
      call: "move_mount",
      args: [
        { ref: overlay },
        { str: "" },
        AT.FDCWD,
        { str: rootPath },
        AT.MOVE_MOUNT_F_EMPTY_PATH,
      ],
      step: what,
    });
    b.close(overlay);
  } else {
    // pivot_root needs the new root to be a mount point.
    const what = `bind-mounting the root "${rootPath}"`;
    const tree = b.cloneTree({ str: rootPath }, true, what);
    b.op({
      call: "move_mount",
      args: [{ ref: tree }, { str: "" }, AT.FDCWD, { str: rootPath }, AT.MOVE_MOUNT_F_EMPTY_PATH],
      step: what,
    });
    b.close(tree);
  }
  b.op({
    call: "openat",
    args: [AT.FDCWD, { str: rootPath }, O.PATH | O.DIRECTORY | O.CLOEXEC],
    produces: "root",
    step: `opening the root "${rootPath}"`,
  });
}

/**
 * The join-first order (see `joinsFirst`): setns into every joined
 * namespace (user first), unshare the new ones, wait for the id maps of a
 * new user namespace (reported with MAPS_RECORD), then fork once with
 * CLONE_PARENT so that the process is inside the new or joined PID
 * namespace (the middle process reports the pid and leaves). The cgroup
 * namespace stays for later, as on the fast path.
 */
function joinThenCreate(b: ProgramBuilder, input: CreateProgramInput): void {
  const c = input.config;
  // The joined namespaces may hold another container's processes: from
  // now until execve this process is a copy of trun (see `dumpable`).
  b.dumpable(false, "making the process non-dumpable before joining namespaces");
  joinNamespaces(b, input.joinFds);
  const flags = c.newNamespaces.filter((t) => t !== "pid" && t !== "cgroup")
    .reduce((f, t) => f | NAMESPACE_FLAGS[t], 0);
  if (flags !== 0) {
    b.op({ call: "unshare", args: [flags], step: "creating the container's namespaces (unshare)" });
  }
  if (c.newNamespaces.includes("user")) {
    if (input.mapsSync === undefined) throw new Error("a new user namespace needs the maps pipe");
    // The parent (or newuidmap, which checks who owns /proc/PID) writes the
    // maps: /proc/PID belongs to the user only while the process is
    // dumpable. It is not yet in the joined PID namespace, so no container
    // process can see it meanwhile (runc does the same).
    b.dumpable(true, "letting the parent write the id maps");
    b.op({
      call: "write",
      args: [input.errFd, { bytes: MAPS_RECORD }, MAPS_RECORD.length],
      step: "asking for the id maps",
    });
    b.op({
      call: "read",
      args: [input.mapsSync, { scratch: 8 }, 1],
      step: "waiting for the id maps",
    });
    b.op({ call: "close", args: [input.mapsSync], step: "closing the maps pipe" });
    b.dumpable(false, "making the process non-dumpable again");
    becomeRoot(b);
  }
  const newPid = c.newNamespaces.includes("pid");
  if (newPid) {
    b.op({
      call: "unshare",
      args: [CLONE.NEWPID],
      step: "creating the PID namespace (unshare)",
    });
  }
  if (newPid || c.joinNamespaces.some((j) => j.type === "pid")) {
    b.op({
      call: "clone",
      args: [CLONE.PARENT | SIGNALS.SIGCHLD, 0, 0, 0, 0],
      parentReportsAndExits: true,
      step: "entering the PID namespace (clone)",
    });
    if (input.dieWithParent) {
      // A fork clears the parent-death signal; the parent is trun again.
      b.op({
        call: "prctl",
        args: [PR.SET_PDEATHSIG, SIGNALS.SIGKILL, 0, 0, 0],
        step: "setting the parent-death signal after the fork",
      });
    }
  }
}

/**
 * Becomes root of the new user namespace once its maps exist: the cloning
 * process's ids may not be mapped at all (host root with a 0 → 300000
 * mapping is nobody inside and could create no file).
 */
function becomeRoot(b: ProgramBuilder): void {
  b.op({ call: "setresgid", args: [0, 0, 0], step: "becoming root in the user namespace (gid)" });
  b.op({ call: "setresuid", args: [0, 0, 0], step: "becoming root in the user namespace (uid)" });
}

/** Joins namespaces by descriptor (setns(2)), in the order given. */
function joinNamespaces(b: ProgramBuilder, fds: { type: NamespaceType; fd: number }[]): void {
  for (const j of fds) {
    b.op({
      call: "setns",
      args: [j.fd, NAMESPACE_FLAGS[j.type]],
      step: `joining the ${j.type} namespace`,
    });
  }
}

/** The session keyring a container's processes share, named as runc names it. */
export function sessionKeyringName(containerId: string): string {
  return `_ses.${containerId}`;
}

/**
 * Joins the named session keyring, creating it when it does not exist, so
 * that the process does not keep its creator's (keyrings(7)): a key added
 * on the host user's session keyring must not be readable inside, nor one
 * added inside show up outside. As runc: ENOSYS (a kernel without keys) is
 * no failure, anything else is. A new keyring is then made searchable, so
 * that `exec` finds it by name: by others in a user namespace (as runc),
 * and always by its owner, which runc adds only without one (an `exec`
 * as the container's root owns the keyring, so the kernel checks the
 * owner's bits, not the others').
 */
function joinSessionKeyring(
  b: ProgramBuilder,
  name: string,
  created: { userns: boolean } | null,
): void {
  b.op({
    call: "keyctl",
    args: [KEYCTL.JOIN_SESSION_KEYRING, { str: name }],
    okErrno: Errno.ENOSYS,
    step: `joining the session keyring "${name}"`,
  });
  if (!created) return;
  // The permissions join_session_keyring gives a new keyring, plus search.
  const perm = KEY_PERM.POS_ALL | KEY_PERM.USR_VIEW | KEY_PERM.USR_READ | KEY_PERM.USR_LINK |
    KEY_PERM.USR_SEARCH | (created.userns ? KEY_PERM.OTH_SEARCH : 0);
  b.op({
    call: "keyctl",
    args: [KEYCTL.SETPERM, KEY_SPEC.SESSION_KEYRING, perm],
    okErrno: Errno.ENOSYS,
    step: `making the session keyring "${name}" searchable`,
  });
}

/**
 * The container's first process. Order matters: the id maps must be written
 * before anything needs root in the namespace (hence the sync read first);
 * all mounts happen before pivot_root because sources are host paths;
 * sysctls before /proc/sys turns read-only; masks after /proc and /sys
 * exist; the terminal after pivot_root (the container's devpts); the user
 * switch after everything that needs capabilities; the signal mask is
 * restored just before execve.
 */
export function createProgram(input: CreateProgramInput): ChildOp[] {
  const b = new ProgramBuilder();
  const { config: c, config: { process: proc } } = input;

  if (input.dieWithParent) {
    // If trun dies, the container must not outlive it unobserved.
    b.op({
      call: "prctl",
      args: [PR.SET_PDEATHSIG, SIGNALS.SIGKILL, 0, 0, 0],
      step: "setting the parent-death signal",
    });
  }
  // Descriptors the caller leaked to us (conmon passes Podman's slirp4netns
  // sync pipe without CLOEXEC) must not stay open in a container that may
  // wait a long time for `start`: close all but ours now.
  closeAllBut(b, [
    input.syncRead,
    input.errFd,
    ...input.joinFds.map((j) => j.fd),
    ...(input.console ? [input.console.socket, input.console.slot] : []),
    ...(input.execFifo !== undefined ? [input.execFifo] : []),
    ...(input.hookSync ? [input.hookSync.ready, input.hookSync.go] : []),
    ...(input.mapsSync !== undefined ? [input.mapsSync] : []),
    ...(input.stdio ?? []),
  ]);
  const first = joinsFirst(c);
  if (first) joinThenCreate(b, input);
  b.op({
    call: "read",
    args: [input.syncRead, { scratch: 8 }, 1],
    step: "waiting for the id maps",
  });
  b.op({ call: "close", args: [input.syncRead], step: "closing the sync pipe" });
  if (!first && c.newNamespaces.includes("user")) becomeRoot(b);
  // A new session: Ctrl-C on trun's terminal reaches the container once,
  // through trun's forwarding, not twice through the process group.
  b.op({ call: "setsid", args: [], step: "starting a new session" });
  if (!first) joinNamespaces(b, input.joinFds);
  // Now in the container's user namespace, as its root: the keyring is
  // owned there and its name is looked up there.
  if (input.sessionKeyring !== undefined) {
    const userns = c.newNamespaces.includes("user") ||
      c.joinNamespaces.some((j) => j.type === "user");
    joinSessionKeyring(b, input.sessionKeyring, { userns });
  }
  if (c.newNamespaces.includes("cgroup")) {
    // Only now: the parent has moved us into the container's cgroup, which
    // becomes the root of the new cgroup namespace.
    b.op({
      call: "unshare",
      args: [CLONE.NEWCGROUP],
      step: "creating the cgroup namespace",
    });
  }
  const prop = c.rootfsPropagation;
  b.op({
    call: "mount",
    args: [0, { str: "/" }, 0, (prop.recursive ? MS.REC : 0) | PROPAGATION_FLAGS[prop.type], 0],
    step: `making "/" ${prop.recursive ? "r" : ""}${prop.type}`,
  });

  mountRoot(b, c.rootPath, input.rootfs);

  for (const m of c.mounts) {
    if (m.kind === "bind" && input.kindOf(m.source) === null) {
      throw new Error(`bind source path does not exist: "${m.source}"`);
    }
  }
  for (const m of c.mounts) {
    b.mount(m, m.kind === "bind" ? input.kindOf(m.source) : "dir");
    if (c.setupDev && m.kind === "fs" && m.target === "/dev") {
      for (const d of c.devices) b.device(d, input.createDevices === true);
      const dev = b.openTarget("/dev", "dir", true, "creating /dev links");
      for (const [name, text] of Object.entries(DEV_SYMLINKS)) {
        b.op({
          call: "symlinkat",
          args: [{ str: text }, { ref: dev }, { str: name }],
          okErrno: Errno.EEXIST,
          step: `creating the symlink "/dev/${name}"`,
        });
      }
      b.close(dev);
    }
  }
  if (!c.setupDev) { for (const d of c.devices) b.device(d, input.createDevices === true); }

  for (const [key, value] of c.sysctl) {
    b.writeFile(`/proc/sys/${key.replace(/\./g, "/")}`, value, `setting sysctl ${key}`, true);
  }

  for (const path of c.maskedPaths) {
    const kind = input.containerPathKind(path);
    if (kind === null) continue;
    const what = `masking "${path}"`;
    const target = b.openInRoot(path, O.PATH | O.CLOEXEC, { noSymlinks: true, what });
    const ro = MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC;
    const mnt = kind === "dir"
      ? b.newFilesystem("tmpfs", [], ro, what)
      : b.cloneTree({ str: "/dev/null" }, false, what);
    b.moveMount(mnt, target, what);
  }

  for (const path of c.readonlyPaths) {
    if (input.containerPathKind(path) === null) continue;
    const what = `making "${path}" read-only`;
    const target = b.openInRoot(path, O.PATH | O.CLOEXEC, { noSymlinks: true, what });
    const tree = b.cloneTree({ ref: target }, true, what, AT.EMPTY_PATH);
    b.setAttr(
      tree,
      { set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC },
      true,
      what,
    );
    b.moveMount(tree, target, what);
  }

  // The working directory is created if the image lacks it, as Docker does.
  b.close(b.openTarget(proc.cwd, "dir", false, `creating the working directory "${proc.cwd}"`));

  if (c.rootReadonly) {
    b.setAttr("root", { set: MOUNT_ATTR.RDONLY }, false, "making the root read-only");
  }

  if (input.hookSync) {
    // The createContainer hooks run now, in this mount namespace, before
    // pivot_root: the parent joins our namespaces, runs them, then says go.
    b.op({
      call: "write",
      args: [input.hookSync.ready, { bytes: new Uint8Array([1]) }, 1],
      step: "reporting the mounts ready for the createContainer hooks",
    });
    b.op({
      call: "read",
      args: [input.hookSync.go, { scratch: 8 }, 1],
      step: "waiting for the createContainer hooks",
    });
  }

  // pivot_root(".", ".") stacks the old root on the new one; detaching it
  // leaves only the container's tree (pivot_root(2), "NOTES").
  b.op({ call: "fchdir", args: [{ ref: "root" }], step: "entering the new root" });
  b.op({
    call: "pivot_root",
    args: [{ str: "." }, { str: "." }],
    step: "pivoting to the new root (pivot_root)",
  });
  b.op({ call: "umount2", args: [{ str: "." }, AT.MNT_DETACH], step: "detaching the old root" });
  b.op({ call: "chdir", args: [{ str: "/" }], step: `changing to "/"` });
  b.close("root");
  b.openRoot("newRoot", "opening the new root");

  // A new network namespace starts with its loopback down; containers
  // expect 127.0.0.1 to work, as in Docker's and Podman's.
  if (c.newNamespaces.includes("network")) {
    b.op({
      call: "socket",
      args: [AF.INET, SOCK.DGRAM | SOCK.CLOEXEC, 0],
      produces: "loSocket",
      step: "opening a socket to bring the loopback interface up",
    });
    b.op({
      call: "ioctl",
      args: [
        { ref: "loSocket" },
        SIOC.SIFFLAGS,
        { bytes: encodeIfreqFlags("lo", IFF.UP | IFF.LOOPBACK | IFF.RUNNING) },
      ],
      step: `bringing the loopback interface "lo" up`,
    });
    b.close("loSocket");
  }
  if (c.hostname !== undefined) {
    const n = new TextEncoder().encode(c.hostname).length;
    b.op({
      call: "sethostname",
      args: [{ str: c.hostname }, n],
      step: `setting the hostname "${c.hostname}"`,
    });
  }
  if (c.domainname !== undefined) {
    const n = new TextEncoder().encode(c.domainname).length;
    b.op({
      call: "setdomainname",
      args: [{ str: c.domainname }, n],
      step: `setting the domain name "${c.domainname}"`,
    });
  }

  if (input.console) b.terminal(input.console, proc.consoleSize);
  else if (input.stdinNull) b.stdinNull();
  if (input.stdio && !input.console) {
    input.stdio.forEach((fd, i) => {
      if (fd !== i) b.op({ call: "dup2", args: [fd, i], step: `setting fd ${i}` });
    });
  }

  const seccomp = input.config.seccomp;
  if (seccomp && !proc.noNewPrivileges) b.seccomp(seccomp);
  b.identity(proc, input.setgroups);
  if (input.dieWithParent) {
    // The kernel clears the parent-death signal when the uid or gid changes.
    b.op({
      call: "prctl",
      args: [PR.SET_PDEATHSIG, SIGNALS.SIGKILL, 0, 0, 0],
      step: "setting the parent-death signal again after the user switch",
    });
  }
  b.workingDirectory(proc.cwd, "newRoot");

  if (input.execFifo !== undefined) {
    // Created: tell `create`, then block until `start` opens the fifo. The
    // fifo was opened (O_PATH) before pivot_root, and is reopened for
    // writing through /proc, as runc does.
    b.op({
      call: "write",
      args: [input.errFd, { bytes: READY_RECORD }, READY_RECORD.length],
      step: "reporting the container created",
    });
    b.op({
      call: "openat",
      args: [AT.FDCWD, { str: `/proc/self/fd/${input.execFifo}` }, O.WRONLY | O.CLOEXEC],
      produces: "fifo",
      step: "waiting for start (opening the exec fifo)",
    });
    b.op({
      call: "write",
      args: [{ ref: "fifo" }, { bytes: new Uint8Array([48]) }, 1],
      step: "signalling start through the exec fifo",
    });
    b.close("fifo");
  }

  if (seccomp && proc.noNewPrivileges) b.seccomp(seccomp);
  b.ops.push(...execTail({
    paths: input.executables,
    argv: proc.args,
    env: proc.env,
    closeFds: true,
  }));
  return b.ops;
}

/** Descriptors and choices of `joinProgram`. */
export interface JoinProgramInput {
  /** The process to run. */
  process: ProcessConfig;
  /** Its executable candidates. */
  executables: string[];
  /** The container's namespaces, as descriptors (user first when present). */
  namespaces: { type: NamespaceType; fd: number }[];
  /** The error pipe's write end: the only descriptor of trun's kept to the end. */
  errFd: number;
  /** Where to send the pty master, with `process.terminal`. */
  console?: ConsoleFds;
  /** Whether setgroups(2) is allowed in the container's user namespace. */
  setgroups: boolean;
  /** A descriptor to make stdin (a hook's state on a pipe). */
  stdinFd?: number;
  /**
   * Keep the runtime's own identity and capabilities (hooks run with the
   * runtime's privileges, not the container process's).
   */
  keepPrivileges?: boolean;
  /** The container's `cgroup.procs`, opened for writing: the process joins that cgroup. */
  cgroupProcs?: number;
  /** The container's session keyring (`sessionKeyringName`), to join as its processes share it. */
  sessionKeyring?: string;
  /** The container's seccomp filter (not for hooks, which keep the runtime's privileges). */
  seccomp?: SeccompPlan;
}

/**
 * A process joining a running container. The stub's child is a plain fork
 * (setns into a user namespace refuses a process sharing its memory), joins
 * every namespace, then forks once more with CLONE_PARENT: setns(2) into a
 * PID namespace only moves the children. The middle process reports the
 * final pid on the error pipe and exits; the final process, a child of
 * trun, sets its terminal, privileges and working directory and execs.
 *
 * Until execve the process is a copy of trun, in the container's reach:
 * it is made non-dumpable before the first setns (CVE-2019-5736), and
 * every descriptor it inherited from trun but the few it needs is closed
 * before the first path is resolved in the container, and the working
 * directory is entered inside the container's root (CVE-2024-21626).
 */
export function joinProgram(input: JoinProgramInput): ChildOp[] {
  const b = new ProgramBuilder();
  const proc = input.process;
  b.dumpable(false, "making the process non-dumpable before joining the container");
  // Closed, not only marked close-on-exec: until execve a descriptor is
  // reachable as /proc/self/fd/N by any path the container controls.
  closeAllBut(b, [
    input.errFd,
    ...input.namespaces.map((n) => n.fd),
    ...(input.console ? [input.console.socket, input.console.slot] : []),
    ...(input.stdinFd !== undefined ? [input.stdinFd] : []),
    ...(input.cgroupProcs !== undefined ? [input.cgroupProcs] : []),
  ]);
  joinNamespaces(b, input.namespaces);
  for (const n of input.namespaces) {
    b.op({ call: "close", args: [n.fd], step: `closing the ${n.type} namespace descriptor` });
  }
  // setns(2) into the mount namespace made its root this process's root.
  b.openRoot("containerRoot", "opening the container's root");
  b.op({
    call: "clone",
    args: [CLONE.PARENT | SIGNALS.SIGCHLD, 0, 0, 0, 0],
    parentReportsAndExits: true,
    step: "entering the PID namespace (clone)",
  });
  b.op({ call: "setsid", args: [], step: "starting a new session" });
  if (input.cgroupProcs !== undefined) {
    // Writing 0 to cgroup.procs moves the writer: the process is in the
    // container's cgroup before it runs anything of its own.
    b.op({
      call: "write",
      args: [input.cgroupProcs, { bytes: new TextEncoder().encode("0") }, 1],
      step: "joining the container's cgroup",
    });
    b.op({ call: "close", args: [input.cgroupProcs], step: "closing cgroup.procs" });
  }
  if (input.stdinFd !== undefined) {
    b.op({ call: "dup2", args: [input.stdinFd, 0], step: "setting stdin" });
  }
  // Still the container's root, before the user switch (as runc's setns init).
  if (input.sessionKeyring !== undefined) joinSessionKeyring(b, input.sessionKeyring, null);
  if (input.console) b.terminal(input.console, proc.consoleSize);
  const seccomp = input.keepPrivileges ? undefined : input.seccomp;
  if (seccomp && !proc.noNewPrivileges) b.seccomp(seccomp);
  if (!input.keepPrivileges) b.identity(proc, input.setgroups);
  b.workingDirectory(proc.cwd, "containerRoot");
  if (seccomp && proc.noNewPrivileges) b.seccomp(seccomp);
  b.ops.push(...execTail({
    paths: input.executables,
    argv: proc.args,
    env: proc.env,
    closeFds: true,
  }));
  return b.ops;
}
