/**
 * Compiles a `ContainerPlan` into the child program: the ordered list of raw
 * system calls the cloned child makes, from waiting for its id maps to
 * execve. Pure: the result is data, unit-tested by reading it.
 *
 * Mount targets inside the image are opened with openat2(2)
 * `RESOLVE_IN_ROOT` relative to the new root and mounted with the fd-based
 * mount API (fsopen(2), fsmount(2), open_tree(2), move_mount(2),
 * mount_setattr(2)), so a symlink in the image can never redirect a mount to
 * the host side. The standard targets (/proc, /dev, /sys…) also refuse
 * symlinks altogether (`RESOLVE_NO_SYMLINKS`).
 */
import type { ChildOp, OpArg } from "../../ffi/child_program.ts";
import { AT, MOUNT_ATTR, MS, O, PR, RESOLVE, TTY } from "../../ffi/syscalls.ts";
import type { MountAttrs, MountSpec } from "./mounts.ts";
import { DEV_SYMLINKS } from "./mounts.ts";
import type { ContainerPlan } from "./plan.ts";

/** The pipe ends the child uses, numbered as the child sees them. */
export interface ChildFds {
  /** Read end of the sync pipe: one byte means "id maps written, go on". */
  syncRead: number;
  /** The pty slave to make stdin, stdout, stderr and the controlling terminal (`-t`). */
  ttySlave?: number;
}

const ENOENT = 2, EEXIST = 17, EINVAL = 22;
const SIGKILL = 9, SIGSTOP = 19;
const LAST_SIGNAL = 64;
const LAST_CAPABILITY = 63;

/** Encodes struct open_how {u64 flags; u64 mode; u64 resolve}. */
function openHow(flags: number, mode: number, resolve: number): OpArg {
  const b = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
  return { bytes: new Uint8Array(b.buffer) };
}

/** Encodes struct mount_attr {u64 attr_set, attr_clr, propagation, userns_fd}. */
function mountAttr(attrs: MountAttrs): OpArg {
  const b = new BigUint64Array([BigInt(attrBits(attrs)), 0n, 0n, 0n]);
  return { bytes: new Uint8Array(b.buffer) };
}

function attrBits(a: MountAttrs): number {
  return (a.readOnly ? MOUNT_ATTR.RDONLY : 0) | (a.nosuid ? MOUNT_ATTR.NOSUID : 0) |
    (a.nodev ? MOUNT_ATTR.NODEV : 0) | (a.noexec ? MOUNT_ATTR.NOEXEC : 0);
}

function splitPath(path: string): string[] {
  return path.split("/").filter((c) => c !== "" && c !== ".");
}

/** Escapes an overlay lowerdir entry (`:` separates layers, `\` escapes). */
export function escapeOverlayPath(path: string): string {
  return path.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
}

/** Builds ops; keeps a counter for unique fd names. */
class ProgramBuilder {
  readonly ops: ChildOp[] = [];
  private n = 0;

  fresh(prefix: string): string {
    return `${prefix}${this.n++}`;
  }

  op(op: ChildOp): void {
    this.ops.push(op);
  }

  close(ref: string): void {
    this.op({ call: "close", args: [{ ref }], step: "closing a setup descriptor" });
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
          openHow(O.PATH | O.DIRECTORY | O.CLOEXEC, 0, resolve),
          24,
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
            openHow(O.CREAT | O.RDONLY | O.CLOEXEC, 0o644, resolve),
            24,
          ],
          produces: f,
          step: `${what}: creating "${shown}"`,
        });
        this.close(f);
      } else {
        this.op({
          call: "mkdirat",
          args: [{ ref: parent }, { str: comps[i]! }, 0o755],
          okErrno: EEXIST,
          step: `${what}: creating "${shown}"`,
        });
      }
      this.close(parent);
    }
    const target = this.fresh("target");
    this.op({
      call: "openat2",
      args: [
        { ref: "root" },
        { str: comps.join("/") || "." },
        openHow(O.PATH | O.CLOEXEC | (type === "dir" ? O.DIRECTORY : 0), 0, resolve),
        24,
      ],
      produces: target,
      step: `${what}: opening "${path}"`,
    });
    return target;
  }

  /** Opens an existing `path` inside the root as an O_PATH fd, refusing symlinks. */
  openExisting(path: string, what: string): string {
    const target = this.fresh("target");
    this.op({
      call: "openat2",
      args: [
        { ref: "root" },
        { str: splitPath(path).join("/") || "." },
        openHow(
          O.PATH | O.CLOEXEC,
          0,
          RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS | RESOLVE.NO_SYMLINKS,
        ),
        24,
      ],
      produces: target,
      step: `${what}: opening "${path}"`,
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
   * A null option value sets a flag option.
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

  mount(spec: MountSpec): void {
    if (spec.kind === "fs") {
      const what = `mounting ${spec.fstype} on "${spec.target}"`;
      const target = this.openTarget(spec.target, "dir", spec.noSymlinks, what);
      const mnt = this.newFilesystem(
        spec.fstype,
        Object.entries(spec.options),
        attrBits(spec.attrs),
        what,
      );
      this.moveMount(mnt, target, what);
    } else {
      const what = `bind-mounting "${spec.source}" on "${spec.target}"`;
      const target = this.openTarget(spec.target, spec.targetType, spec.noSymlinks, what);
      const tree = this.fresh("tree");
      const rec = spec.recursive ? AT.RECURSIVE : 0;
      this.op({
        call: "open_tree",
        args: [AT.FDCWD, { str: spec.source }, AT.OPEN_TREE_CLONE | AT.OPEN_TREE_CLOEXEC | rec],
        produces: tree,
        step: what,
      });
      if (attrBits(spec.attrs) !== 0) {
        this.op({
          call: "mount_setattr",
          args: [{ ref: tree }, { str: "" }, AT.EMPTY_PATH | rec, mountAttr(spec.attrs), 32],
          step: `${what}: setting mount attributes`,
        });
      }
      this.moveMount(tree, target, what);
    }
  }
}

/**
 * The child program for `plan`. Order matters: the id maps must be written
 * before anything needs root in the namespace (hence the sync read first);
 * all mounts happen before pivot_root because sources are host paths; masks
 * come after /proc and /sys exist; the user switch comes after everything
 * that needs capabilities; the signal mask is restored just before execve.
 */
export function compileChildProgram(plan: ContainerPlan, fds: ChildFds): ChildOp[] {
  const b = new ProgramBuilder();
  const { rootfs, process: proc } = plan;

  // If trun dies, the container must not outlive it unobserved.
  b.op({
    call: "prctl",
    args: [PR.SET_PDEATHSIG, SIGKILL, 0, 0, 0],
    step: "setting the parent-death signal",
  });
  b.op({ call: "read", args: [fds.syncRead, { scratch: 8 }, 1], step: "waiting for the id maps" });
  b.op({ call: "close", args: [fds.syncRead], step: "closing the sync pipe" });
  // A new session: Ctrl-C on trun's terminal reaches the container once,
  // through trun's forwarding, not twice through the process group.
  b.op({ call: "setsid", args: [], step: "starting a new session" });
  b.op({
    call: "mount",
    args: [0, { str: "/" }, 0, MS.REC | MS.PRIVATE, 0],
    step: `making "/" private`,
  });

  // The root: an overlay whose upper and work dirs live on a tmpfs private
  // to this mount namespace, so nothing written survives the container and
  // the lower directories are never modified.
  const s = rootfs.scratch;
  b.op({
    call: "mount",
    args: [{ str: "tmpfs" }, { str: s }, { str: "tmpfs" }, MS.NOSUID | MS.NODEV, {
      str: "mode=0700",
    }],
    step: `mounting tmpfs on "${s}"`,
  });
  for (const d of ["upper", "work", "root"]) {
    b.op({
      call: "mkdirat",
      args: [AT.FDCWD, { str: `${s}/${d}` }, 0o755],
      step: `creating "${s}/${d}"`,
    });
  }
  const ovWhat = `mounting the overlay root on "${s}/root"`;
  const lowers: [string, string][] = rootfs.lowerdirAppend
    ? rootfs.lowers.map((l) => ["lowerdir+", l])
    : [["lowerdir", rootfs.lowers.map(escapeOverlayPath).join(":")]];
  const overlay = b.newFilesystem(
    "overlay",
    [...lowers, ["upperdir", `${s}/upper`], ["workdir", `${s}/work`], ["userxattr", null]],
    0,
    ovWhat,
  );
  b.op({
    call: "move_mount",
    args: [
      { ref: overlay },
      { str: "" },
      AT.FDCWD,
      { str: `${s}/root` },
      AT.MOVE_MOUNT_F_EMPTY_PATH,
    ],
    step: ovWhat,
  });
  b.close(overlay);
  b.op({
    call: "openat",
    args: [AT.FDCWD, { str: `${s}/root` }, O.PATH | O.DIRECTORY | O.CLOEXEC],
    produces: "root",
    step: `opening the root "${s}/root"`,
  });

  for (const m of plan.mounts) {
    b.mount(m);
    if (m.kind === "fs" && m.target === "/dev") {
      const dev = b.openTarget("/dev", "dir", true, "creating /dev links");
      for (const [name, text] of Object.entries(DEV_SYMLINKS)) {
        b.op({
          call: "symlinkat",
          args: [{ str: text }, { ref: dev }, { str: name }],
          okErrno: EEXIST,
          step: `creating the symlink "/dev/${name}"`,
        });
      }
      b.close(dev);
    }
  }

  for (const m of plan.maskedPaths) {
    const what = `masking "${m.path}"`;
    const target = b.openExisting(m.path, what);
    let mnt: string;
    if (m.dir) {
      const ro = MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC;
      mnt = b.newFilesystem("tmpfs", [], ro, what);
    } else {
      mnt = b.fresh("mask");
      b.op({
        call: "open_tree",
        args: [AT.FDCWD, { str: "/dev/null" }, AT.OPEN_TREE_CLONE | AT.OPEN_TREE_CLOEXEC],
        produces: mnt,
        step: what,
      });
    }
    b.moveMount(mnt, target, what);
  }

  for (const path of plan.readonlyPaths) {
    const what = `making "${path}" read-only`;
    const target = b.openExisting(path, what);
    const tree = b.fresh("ro");
    b.op({
      call: "open_tree",
      args: [
        { ref: target },
        { str: "" },
        AT.OPEN_TREE_CLONE | AT.OPEN_TREE_CLOEXEC | AT.EMPTY_PATH | AT.RECURSIVE,
      ],
      produces: tree,
      step: what,
    });
    b.op({
      call: "mount_setattr",
      args: [
        { ref: tree },
        { str: "" },
        AT.EMPTY_PATH | AT.RECURSIVE,
        mountAttr({ readOnly: true, nosuid: true, nodev: true, noexec: true }),
        32,
      ],
      step: what,
    });
    b.moveMount(tree, target, what);
  }

  // The working directory is created if the image lacks it, as Docker does.
  b.close(b.openTarget(proc.cwd, "dir", false, `creating the working directory "${proc.cwd}"`));

  if (rootfs.readOnly) {
    b.op({
      call: "mount_setattr",
      args: [{ ref: "root" }, { str: "" }, AT.EMPTY_PATH, mountAttr({ readOnly: true }), 32],
      step: "making the root read-only",
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

  b.op({
    call: "sethostname",
    args: [{ str: plan.hostname }, new TextEncoder().encode(plan.hostname).length],
    step: `setting the hostname "${plan.hostname}"`,
  });

  const keep = new Set(proc.capabilities);
  for (let cap = 0; cap <= LAST_CAPABILITY; cap++) {
    if (keep.has(cap)) continue;
    // EINVAL: the kernel has fewer capabilities than 64.
    b.op({
      call: "prctl",
      args: [PR.CAPBSET_DROP, cap, 0, 0, 0],
      okErrno: EINVAL,
      step: `dropping capability ${cap}`,
    });
  }

  // setgroups is denied in a single-id mapping (the kernel requires it
  // before an unprivileged gid_map is written).
  if (plan.idMapping.mode !== "single") {
    const gids = new Uint32Array(proc.additionalGids);
    b.op({
      call: "setgroups",
      args: [gids.length, { bytes: new Uint8Array(gids.buffer) }],
      step: `setting supplementary groups ${JSON.stringify(proc.additionalGids)}`,
    });
  }
  b.op({
    call: "setresgid",
    args: [proc.gid, proc.gid, proc.gid],
    step: `switching to group ${proc.gid}`,
  });
  b.op({
    call: "setresuid",
    args: [proc.uid, proc.uid, proc.uid],
    step: `switching to user ${proc.uid}`,
  });
  b.op({
    call: "chdir",
    args: [{ str: proc.cwd }],
    step: `changing to the working directory "${proc.cwd}"`,
  });

  // Ignored signals stay ignored across execve (Deno ignores SIGPIPE), and a
  // handler could run between the mask restore and execve: reset them all.
  const sigactionDefault = { bytes: new Uint8Array(32) };
  for (let sig = 1; sig <= LAST_SIGNAL; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    b.op({
      call: "rt_sigaction",
      args: [sig, sigactionDefault, 0, 8],
      okErrno: EINVAL,
      step: `resetting signal ${sig}`,
    });
  }
  if (fds.ttySlave !== undefined) {
    for (const target of [0, 1, 2]) {
      b.op({
        call: "dup2",
        args: [fds.ttySlave, target],
        step: `connecting the terminal to fd ${target}`,
      });
    }
    // setsid() above left the process without a controlling terminal.
    b.op({
      call: "ioctl",
      args: [0, TTY.SCTTY, 0],
      step: "making the terminal the controlling terminal",
    });
  } else if (!proc.keepStdin) {
    // Without -i the container must not eat the terminal's input.
    b.op({
      call: "openat",
      args: [AT.FDCWD, { str: "/dev/null" }, O.RDONLY | O.CLOEXEC],
      produces: "devnull",
      step: `opening "/dev/null" for stdin`,
    });
    b.op({ call: "dup2", args: [{ ref: "devnull" }, 0], step: "setting stdin to /dev/null" });
  }
  // Whatever trun's runtime left open must not leak into the container.
  b.op({
    call: "close_range",
    args: [3, 0xffffffff, AT.CLOSE_RANGE_CLOEXEC],
    step: "closing trun's descriptors",
  });
  b.op({
    call: "rt_sigprocmask",
    args: [2, /* SIG_SETMASK */ { savedSignalMask: true }, 0, 8],
    step: "restoring the signal mask",
  });

  const argv = { strs: proc.args };
  const envp = { strs: proc.env };
  proc.executables.forEach((exe, i) => {
    const last = i === proc.executables.length - 1;
    b.op({
      call: "execve",
      args: [{ str: exe }, argv, envp],
      ...(last ? {} : { okErrno: ENOENT }),
      step: `executing "${proc.args[0] ?? exe}"`,
    });
  });
  return b.ops;
}
