/**
 * System call numbers and the kernel constants the child program uses, by
 * name (x86-64 numbering; see syscall(2) and the uapi headers). Only `ffi/`
 * knows numbers; the rest of trun names calls and flags.
 */

/** The system calls a child program may make. */
export type SyscallName = keyof typeof SYSCALLS_X86_64;

/** x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
export const SYSCALLS_X86_64 = {
  read: 0,
  write: 1,
  close: 3,
  mmap: 9,
  mprotect: 10,
  munmap: 11,
  rt_sigaction: 13,
  rt_sigprocmask: 14,
  ioctl: 16,
  dup2: 33,
  getpid: 39,
  execve: 59,
  wait4: 61,
  kill: 62,
  chdir: 80,
  fchdir: 81,
  setsid: 112,
  setgroups: 116,
  setresuid: 117,
  setresgid: 119,
  capset: 126,
  pivot_root: 155,
  prctl: 157,
  mount: 165,
  umount2: 166,
  sethostname: 170,
  lgetxattr: 192,
  exit_group: 231,
  openat: 257,
  mkdirat: 258,
  symlinkat: 266,
  dup3: 292,
  pipe2: 293,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  close_range: 436,
  openat2: 437,
  mount_setattr: 442,
} as const;

/** clone(2) flags. */
export const CLONE = {
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

/** Signal numbers (signal(7), x86-64 and generic). */
export const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** mount(2) flags. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
} as const;

/** mount_setattr(2) / fsmount(2) attribute flags. */
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
} as const;

/** open(2), openat2(2), open_tree(2), move_mount(2) and *at flags. */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOFOLLOW: 0o400000,
  DIRECTORY: 0o200000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;

/** openat2(2) `resolve` flags. */
export const RESOLVE = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
} as const;

/** Flags of the *at family and the new mount API. */
export const AT = {
  FDCWD: -100,
  SYMLINK_NOFOLLOW: 0x100,
  RECURSIVE: 0x8000,
  EMPTY_PATH: 0x1000,
  OPEN_TREE_CLONE: 1,
  OPEN_TREE_CLOEXEC: 0o2000000,
  MOVE_MOUNT_F_EMPTY_PATH: 0x4,
  MOVE_MOUNT_T_EMPTY_PATH: 0x40,
  FSOPEN_CLOEXEC: 1,
  FSMOUNT_CLOEXEC: 1,
  FSCONFIG_SET_FLAG: 0,
  FSCONFIG_SET_STRING: 1,
  FSCONFIG_CMD_CREATE: 6,
  MNT_DETACH: 2,
  CLOSE_RANGE_CLOEXEC: 4,
} as const;

/** ioctl_tty(2) requests. */
export const TTY = {
  /** Make the terminal the caller's controlling terminal. */
  SCTTY: 0x540e,
} as const;

/** prctl(2) options. */
export const PR = {
  SET_PDEATHSIG: 1,
  CAPBSET_DROP: 24,
  SET_NO_NEW_PRIVS: 38,
} as const;

/** Names the bits set in a mount(2) flag word, for error messages (`MS_BIND|MS_REC`). */
export function describeMountFlags(flags: number): string {
  const names = Object.entries(MS).filter(([, bit]) => (flags & bit) !== 0).map(([n]) => `MS_${n}`);
  return names.length ? names.join("|") : "0";
}

/** The syscall table of the running machine, or an error naming what is missing. */
export function syscallTable(): Readonly<Record<SyscallName, number>> {
  if (Deno.build.arch === "x86_64") return SYSCALLS_X86_64;
  throw new Error(
    `trun has no clone stub for ${Deno.build.arch} yet: containers can only start on x86_64 for now`,
  );
}
