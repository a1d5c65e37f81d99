/**
 * The one home of kernel numbers: system call numbers, flag and option
 * constants by name, and the byte layouts of the structs trun hands to the
 * kernel (x86-64 numbering; see syscall(2), the man page of each call and the
 * uapi headers). Errno values live next door in `errno.ts`. Only `ffi/` knows
 * numbers; the rest of trun names calls and flags.
 *
 * Two kinds of tables:
 * - flag tables named after the kernel prefix, keyed by the rest of the name
 *   (`O.CLOEXEC` is `O_CLOEXEC`, `MS.BIND` is `MS_BIND`);
 * - name lookups keyed by the full kernel name, for names that arrive as
 *   strings (`SIGNALS.SIGKILL`, `RLIMITS.RLIMIT_NOFILE`,
 *   `CAPABILITIES.CAP_CHOWN`, as the OCI runtime spec spells them).
 */

import { SYSCALL_TABLE_X86_64 } from "./syscall_table_x86_64.ts";

/**
 * The system calls trun itself makes (`sys()` and child programs); their
 * numbers come from the whole table, the one place that has them.
 */
const TRUN_SYSCALLS = [
  "read",
  "write",
  "close",
  "mmap",
  "mprotect",
  "munmap",
  "rt_sigaction",
  "rt_sigprocmask",
  "ioctl",
  "dup2",
  "getpid",
  "socket",
  "connect",
  "sendto",
  "recvfrom",
  "sendmsg",
  "recvmsg",
  "shutdown",
  "bind",
  "listen",
  "socketpair",
  "clone",
  "execve",
  "wait4",
  "kill",
  "fcntl",
  "chdir",
  "fchdir",
  "umask",
  "getppid",
  "setsid",
  "setgroups",
  "setresuid",
  "setresgid",
  "capget",
  "capset",
  "pivot_root",
  "prctl",
  "mount",
  "umount2",
  "sethostname",
  "setdomainname",
  "lsetxattr",
  "lgetxattr",
  "llistxattr",
  "exit_group",
  "waitid",
  "keyctl",
  "openat",
  "mkdirat",
  "mknodat",
  "fchownat",
  "newfstatat",
  "unlinkat",
  "readlinkat",
  "fchmodat",
  "symlinkat",
  "linkat",
  "utimensat",
  "dup3",
  "pipe2",
  "prlimit64",
  "syncfs",
  "setns",
  "seccomp",
  "unshare",
  "accept4",
  "ppoll",
  "pidfd_send_signal",
  "open_tree",
  "move_mount",
  "fsopen",
  "fsconfig",
  "fsmount",
  "pidfd_open",
  "close_range",
  "openat2",
  "faccessat2",
  "mount_setattr",
] as const;

/** The system calls trun may make. */
export type SyscallName = (typeof TRUN_SYSCALLS)[number];

/** x86-64 numbers of the system calls trun makes. */
export const SYSCALLS_X86_64: Readonly<Record<SyscallName, number>> = Object.fromEntries(
  TRUN_SYSCALLS.map((n) => [n, SYSCALL_TABLE_X86_64[n]!]),
) as Record<SyscallName, number>;

/** The syscall table of the running machine, or an error naming what is missing. */
export function syscallTable(): Readonly<Record<SyscallName, number>> {
  if (Deno.build.arch === "x86_64") return SYSCALLS_X86_64;
  throw new Error(
    `trun has no clone stub for ${Deno.build.arch} yet: containers can only start on x86_64 for now`,
  );
}

// ---------------------------------------------------------------------------
// Processes, signals, namespaces

/** clone(2) flags. */
export const CLONE = {
  VM: 0x00000100,
  VFORK: 0x00004000,
  PARENT: 0x00008000,
  NEWNS: 0x00020000,
  NEWCGROUP: 0x02000000,
  NEWUTS: 0x04000000,
  NEWIPC: 0x08000000,
  NEWUSER: 0x10000000,
  NEWPID: 0x20000000,
  NEWNET: 0x40000000,
} as const;

const SIGNAL_NUMBERS = {
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
} as const;

/**
 * Signal numbers by name (signal(7), x86-64 and generic). Known names are
 * typed exactly (`SIGNALS.SIGKILL` is 9); a name read at run time
 * (`SIGNALS[name]`) may be undefined.
 */
export const SIGNALS: typeof SIGNAL_NUMBERS & Readonly<Record<string, number | undefined>> =
  SIGNAL_NUMBERS;

/** The highest signal number (real-time signals included): `_NSIG`. */
export const NSIG = 64;

/** Bytes of the kernel's sigset_t (the `sigsetsize` argument of rt_sig* calls). */
export const SIGSET_SIZE = 8;

/**
 * Bytes of the kernel's struct sigaction on x86-64 (handler, flags,
 * restorer, mask); all zero is `SIG_DFL` with no flags.
 */
export const SIGACTION_SIZE = 32;

/** rt_sigprocmask(2) `how`. */
export const SIG_HOW = {
  BLOCK: 0,
  UNBLOCK: 1,
  SETMASK: 2,
} as const;

/** wait4(2) and waitid(2) options (`ALL` is `__WALL`). */
export const W = {
  NOHANG: 1,
  UNTRACED: 2,
  STOPPED: 2,
  EXITED: 4,
  CONTINUED: 8,
  NOWAIT: 0x01000000,
  ALL: 0x40000000,
} as const;

/** waitid(2) `idtype`. */
export const P = {
  ALL: 0,
  PID: 1,
  PGID: 2,
  PIDFD: 3,
} as const;

/** prctl(2) options and their sub-options. */
export const PR = {
  SET_PDEATHSIG: 1,
  GET_DUMPABLE: 3,
  SET_DUMPABLE: 4,
  SET_KEEPCAPS: 8,
  CAPBSET_READ: 23,
  CAPBSET_DROP: 24,
  SET_CHILD_SUBREAPER: 36,
  SET_NO_NEW_PRIVS: 38,
  GET_NO_NEW_PRIVS: 39,
  CAP_AMBIENT: 47,
  CAP_AMBIENT_IS_SET: 1,
  CAP_AMBIENT_RAISE: 2,
  CAP_AMBIENT_LOWER: 3,
  CAP_AMBIENT_CLEAR_ALL: 4,
} as const;

/** getrlimit(2)/prlimit64(2) resources by name, as the OCI spec names them. */
export const RLIMITS: Readonly<Record<string, number | undefined>> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** `RLIM_INFINITY`: no limit. */
export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** Capability numbers by name (capabilities(7), linux/capability.h). */
export const CAPABILITIES: Readonly<Record<string, number | undefined>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

/** The highest capability number this table knows (`CAP_LAST_CAP`). */
export const CAP_LAST_CAP = 40;

/** `_LINUX_CAPABILITY_VERSION_3`: the capget(2)/capset(2) header version (two 32-bit words per set). */
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** seccomp(2) operations and SECCOMP_FILTER_FLAG_* flags. */
export const SECCOMP = {
  SET_MODE_FILTER: 1,
  FILTER_FLAG_TSYNC: 1,
  FILTER_FLAG_LOG: 2,
  FILTER_FLAG_SPEC_ALLOW: 4,
  FILTER_FLAG_NEW_LISTENER: 8,
  FILTER_FLAG_TSYNC_ESRCH: 16,
  FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
} as const;

/** What a seccomp filter returns (SECCOMP_RET_*): the action, or'ed with 16 bits of data. */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
  DATA: 0x0000ffff,
} as const;

/** `seccomp_data.arch` values (AUDIT_ARCH_*, linux/audit.h). */
export const AUDIT_ARCH = {
  X86_64: 0xc000003e,
  I386: 0x40000003,
  AARCH64: 0xc00000b7,
  /** AArch32 (compat) calls on an arm64 kernel. */
  ARM: 0x40000028,
} as const;

/** The bit x32 system calls carry in their number on x86-64 (`__X32_SYSCALL_BIT`). */
export const X32_SYSCALL_BIT = 0x40000000;

/** Offsets in struct seccomp_data {i32 nr; u32 arch; u64 instruction_pointer; u64 args[6]}. */
export const SECCOMP_DATA = {
  NR: 0,
  ARCH: 4,
  /** args[i] is at ARGS + 8 * i; little-endian: its low half first. */
  ARGS: 16,
} as const;

/**
 * Classic BPF opcodes (linux/bpf_common.h) as seccomp filters use them:
 * class | size | mode, or class | op | source.
 */
export const BPF = {
  /** BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data. */
  LD_W_ABS: 0x20,
  /** BPF_ALU | BPF_AND | BPF_K: A &= k. */
  ALU_AND_K: 0x54,
  /** BPF_JMP | BPF_JA: pc += k. */
  JA: 0x05,
  /** BPF_JMP | BPF_JEQ | BPF_K. */
  JEQ_K: 0x15,
  /** BPF_JMP | BPF_JGT | BPF_K (unsigned). */
  JGT_K: 0x25,
  /** BPF_JMP | BPF_JGE | BPF_K (unsigned). */
  JGE_K: 0x35,
  /** BPF_JMP | BPF_JSET | BPF_K: jump when A & k (libseccomp uses it; trun does not). */
  JSET_K: 0x45,
  /** BPF_RET | BPF_K: return k. */
  RET_K: 0x06,
  /** The most instructions a filter may have (BPF_MAXINSNS). */
  MAX_INSNS: 4096,
  /** The farthest a conditional jump reaches (an 8-bit offset). */
  MAX_JUMP: 255,
} as const;

/** Bytes of struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}. */
export const SOCK_FILTER_SIZE = 8;

/** One classic BPF instruction. */
export interface SockFilter {
  /** Opcode. */
  code: number;
  /** Jump offset when the condition holds. */
  jt: number;
  /** Jump offset when it does not. */
  jf: number;
  /** The constant. */
  k: number;
}

/** A program as the kernel reads it: struct sock_filter[] (little-endian). */
export function encodeSockFilters(program: readonly SockFilter[]): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(program.length * SOCK_FILTER_SIZE);
  const v = new DataView(b.buffer);
  program.forEach((ins, i) => {
    const o = i * SOCK_FILTER_SIZE;
    v.setUint16(o, ins.code, true);
    v.setUint8(o + 2, ins.jt);
    v.setUint8(o + 3, ins.jf);
    v.setUint32(o + 4, ins.k >>> 0, true);
  });
  return b;
}

/** The instructions of an encoded struct sock_filter[]. */
export function decodeSockFilters(bytes: Uint8Array): SockFilter[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: SockFilter[] = [];
  for (let o = 0; o + SOCK_FILTER_SIZE <= bytes.length; o += SOCK_FILTER_SIZE) {
    out.push({
      code: v.getUint16(o, true),
      jt: v.getUint8(o + 2),
      jf: v.getUint8(o + 3),
      k: v.getUint32(o + 4, true),
    });
  }
  return out;
}

/** Bytes of struct sock_fprog {u16 len; (6 bytes of padding); struct sock_filter *filter}. */
export const SOCK_FPROG_SIZE = 16;

/** struct sock_fprog for seccomp(2): `count` instructions at address `filter`. */
export function encodeSockFprog(count: number, filter: bigint): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(SOCK_FPROG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint16(0, count, true);
  v.setBigUint64(8, filter, true);
  return b;
}

/** keyctl(2) operations. */
export const KEYCTL = {
  JOIN_SESSION_KEYRING: 1,
  SETPERM: 5,
} as const;

/** keyctl(2) special keyring ids (`KEY_SPEC_*`). */
export const KEY_SPEC = {
  SESSION_KEYRING: -3,
} as const;

/** Key permission bits (`KEY_POS_*`, `KEY_USR_*`, `KEY_OTH_*`; keyctl_setperm(3)). */
export const KEY_PERM = {
  POS_ALL: 0x3f000000,
  USR_VIEW: 0x00010000,
  USR_READ: 0x00020000,
  USR_SEARCH: 0x00080000,
  USR_LINK: 0x00100000,
  OTH_SEARCH: 0x00000008,
} as const;

// ---------------------------------------------------------------------------
// Files, mounts, memory

/** open(2), openat2(2), open_tree(2), move_mount(2) and *at flags. */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
  /** An unnamed file in a directory (with O_DIRECTORY's bit, as the kernel defines it). */
  TMPFILE: 0o20200000,
} as const;

/** openat2(2) `resolve` flags. */
export const RESOLVE = {
  NO_XDEV: 0x01,
  NO_MAGICLINKS: 0x02,
  NO_SYMLINKS: 0x04,
  BENEATH: 0x08,
  IN_ROOT: 0x10,
} as const;

/** access(2) modes. */
export const ACCESS = {
  /** Write permission (W_OK). */
  W_OK: 2,
} as const;

/** Flags of the *at family, close_range(2), umount2(2) and the new mount API. */
export const AT = {
  FDCWD: -100,
  SYMLINK_NOFOLLOW: 0x100,
  REMOVEDIR: 0x200,
  SYMLINK_FOLLOW: 0x400,
  EACCESS: 0x200,
  EMPTY_PATH: 0x1000,
  RECURSIVE: 0x8000,
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

/** fcntl(2) commands and the descriptor flag. */
export const F = {
  GETFD: 1,
  SETFD: 2,
  GETFL: 3,
  SETFL: 4,
  DUPFD_CLOEXEC: 1030,
  /** `FD_CLOEXEC`, the F_GETFD/F_SETFD flag. */
  FD_CLOEXEC: 1,
} as const;

/** mount(2) flags; SHARED, SLAVE, PRIVATE and UNBINDABLE (with REC) set propagation. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

/** Names the bits set in a mount(2) flag word, for error messages (`MS_BIND|MS_REC`). */
export function describeMountFlags(flags: number): string {
  const names = Object.entries(MS).filter(([, bit]) => (flags & bit) !== 0).map(([n]) => `MS_${n}`);
  return names.length ? names.join("|") : "0";
}

/**
 * mount_setattr(2) / fsmount(2) attribute flags. The atime modes are values
 * of the `ATIME_MASK` field (`MOUNT_ATTR__ATIME`), not independent bits.
 */
export const MOUNT_ATTR = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  ATIME_MASK: 0x70,
  RELATIME: 0x00,
  NOATIME: 0x10,
  STRICTATIME: 0x20,
  NODIRATIME: 0x80,
  IDMAP: 0x100000,
  NOSYMFOLLOW: 0x200000,
} as const;

/** mmap(2)/mprotect(2) protections. */
export const PROT = {
  READ: 1,
  WRITE: 2,
  EXEC: 4,
} as const;

/** mmap(2) flags. */
export const MAP = {
  PRIVATE: 0x02,
  ANONYMOUS: 0x20,
} as const;

/** File type bits of `st_mode` and mknodat(2)'s `mode` (inode(7)). */
export const S = {
  IFMT: 0o170000,
  IFIFO: 0o010000,
  IFCHR: 0o020000,
  IFDIR: 0o040000,
  IFBLK: 0o060000,
  IFREG: 0o100000,
  IFLNK: 0o120000,
  IFSOCK: 0o140000,
} as const;

/** The page size on x86-64. */
export const PAGE_SIZE = 4096;

// ---------------------------------------------------------------------------
// Terminals and sockets

/** ioctl_tty(2) requests, without their `TIOC` prefix (`TTY.SCTTY` is `TIOCSCTTY`). */
export const TTY = {
  /** Make the terminal the caller's controlling terminal. */
  SCTTY: 0x540e,
  /** Read the window size (struct winsize). */
  GWINSZ: 0x5413,
  /** Set the window size (struct winsize). */
  SWINSZ: 0x5414,
  /** Lock or unlock a pty slave (int *). */
  SPTLCK: 0x40045431,
  /** Open the slave of a pty master (flags as argument; Linux 4.13). */
  GPTPEER: 0x5441,
} as const;

/** Address families (socket(2)). */
export const AF = {
  UNIX: 1,
  INET: 2,
  NETLINK: 16,
} as const;

/** Netlink protocols (netlink(7)). */
export const NETLINK = {
  ROUTE: 0,
} as const;

/** rtnetlink message types (rtnetlink(7), netlink(7)). */
export const RTM = {
  NLMSG_ERROR: 2,
  NLMSG_DONE: 3,
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  NEWROUTE: 24,
} as const;

/** nlmsghdr flags (netlink(7)). */
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  DUMP: 0x300,
  EXCL: 0x200,
  CREATE: 0x400,
} as const;

/** Route netlink attributes and values (linux/if_link.h, if_addr.h, rtnetlink.h, veth.h). */
export const RTNL = {
  IFLA_ADDRESS: 1,
  IFLA_IFNAME: 3,
  IFLA_MASTER: 10,
  IFLA_LINKINFO: 18,
  IFLA_NET_NS_FD: 28,
  IFLA_INFO_KIND: 1,
  IFLA_INFO_DATA: 2,
  VETH_INFO_PEER: 1,
  IFA_ADDRESS: 1,
  IFA_LOCAL: 2,
  IFA_BROADCAST: 4,
  RTA_OIF: 4,
  RTA_GATEWAY: 5,
  AF_INET: 2,
  IFF_UP: 1,
  NLA_F_NESTED: 0x8000,
  RT_TABLE_MAIN: 254,
  RTPROT_BOOT: 3,
  RT_SCOPE_UNIVERSE: 0,
  RTN_UNICAST: 1,
} as const;

/** netdevice(7) requests: `SIOCSIFFLAGS` sets an interface's flags (struct ifreq). */
export const SIOC = {
  SIFFLAGS: 0x8914,
} as const;

/** netdevice(7) interface flags. */
export const IFF = {
  UP: 0x1,
  LOOPBACK: 0x8,
  RUNNING: 0x40,
} as const;

/** sizeof(struct ifreq) on Linux: a 16-byte name, then a 24-byte union. */
export const IFREQ_SIZE = 40;

/** struct ifreq with `ifr_name` = `name` and `ifr_flags` (a short at offset 16) = `flags`. */
export function encodeIfreqFlags(name: string, flags: number): Uint8Array {
  const b = new Uint8Array(IFREQ_SIZE);
  b.set(new TextEncoder().encode(name).subarray(0, 15));
  new DataView(b.buffer).setInt16(16, flags, true);
  return b;
}

/** Socket types and socket(2)/socketpair(2) type flags. */
export const SOCK = {
  STREAM: 1,
  DGRAM: 2,
  RAW: 3,
  SEQPACKET: 5,
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
} as const;

/** Socket option levels. */
export const SOL = {
  SOCKET: 1,
} as const;

/** Control message types (unix(7)): `SCM.RIGHTS` passes descriptors. */
export const SCM = {
  RIGHTS: 1,
} as const;

/** sendmsg(2)/recvmsg(2) flags. */
export const MSG = {
  NOSIGNAL: 0x4000,
  /** Descriptors received with SCM_RIGHTS are close-on-exec. */
  CMSG_CLOEXEC: 0x40000000,
} as const;

// ---------------------------------------------------------------------------
// Struct layouts (little-endian x86-64)

/** Bytes of struct open_how (the `size` argument of openat2(2)). */
export const OPEN_HOW_SIZE = 24;

/** struct open_how {u64 flags; u64 mode; u64 resolve} (openat2(2)). */
export function encodeOpenHow(
  flags: number,
  mode: number,
  resolve: number,
): Uint8Array<ArrayBuffer> {
  const b = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
  return new Uint8Array(b.buffer);
}

/** Bytes of struct mount_attr (the `size` argument of mount_setattr(2)). */
export const MOUNT_ATTR_SIZE = 32;

/** The fields of struct mount_attr. */
export interface MountAttrFields {
  /** MOUNT_ATTR bits to set. */
  set: number;
  /** MOUNT_ATTR bits to clear. */
  clear?: number;
  /** MS.SHARED, MS.SLAVE, MS.PRIVATE or MS.UNBINDABLE; 0 leaves it alone. */
  propagation?: number;
  /** A user namespace fd, with MOUNT_ATTR.IDMAP. */
  usernsFd?: number;
}

/** struct mount_attr {u64 attr_set; u64 attr_clr; u64 propagation; u64 userns_fd}. */
export function encodeMountAttr(a: MountAttrFields): Uint8Array<ArrayBuffer> {
  const b = new BigUint64Array([
    BigInt(a.set),
    BigInt(a.clear ?? 0),
    BigInt(a.propagation ?? 0),
    BigInt(a.usernsFd ?? 0),
  ]);
  return new Uint8Array(b.buffer);
}

/** struct winsize {u16 ws_row, ws_col, ws_xpixel, ws_ypixel} (TTY.SWINSZ). */
export function encodeWinsize(rows: number, columns: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new Uint16Array([rows, columns, 0, 0]).buffer);
}

/** struct __user_cap_header_struct {u32 version; i32 pid} for capget(2)/capset(2); pid 0 is the caller. */
export function encodeCapHeader(pid = 0): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, LINUX_CAPABILITY_VERSION_3, true);
  v.setInt32(4, pid, true);
  return b;
}

/** The three capability sets of capset(2), as bit masks (bit n is capability n). */
export interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

/**
 * struct __user_cap_data_struct[2] {u32 effective, permitted, inheritable}:
 * version 3 splits each 64-bit set into a low and a high 32-bit word.
 */
export function encodeCapData(sets: CapSets): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(6);
  [sets.effective, sets.permitted, sets.inheritable].forEach((mask, i) => {
    words[i] = Number(mask & 0xffff_ffffn);
    words[3 + i] = Number((mask >> 32n) & 0xffff_ffffn);
  });
  return new Uint8Array(words.buffer);
}

/** struct rlimit {u64 rlim_cur; u64 rlim_max} (prlimit64(2)); RLIM_INFINITY for no limit. */
export function encodeRlimit(
  soft: number | bigint,
  hard: number | bigint,
): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new BigUint64Array([BigInt(soft), BigInt(hard)]).buffer);
}

/** struct timespec[2] {i64 tv_sec; i64 tv_nsec} for utimensat(2), from seconds (fractional). */
export function encodeTimespecs(atime: number, mtime: number): Uint8Array<ArrayBuffer> {
  const ts = new BigInt64Array(4);
  [atime, mtime].forEach((t, i) => {
    const s = Math.floor(t);
    ts[2 * i] = BigInt(s);
    ts[2 * i + 1] = BigInt(Math.min(999_999_999, Math.round((t - s) * 1e9)));
  });
  return new Uint8Array(ts.buffer);
}

/**
 * The device number mknodat(2) takes (the kernel's 32-bit `new_encode_dev`:
 * 12 bits of major, 20 of minor), or null when it does not fit.
 */
export function encodeDev(major: number, minor: number): number | null {
  if (major < 0 || major > 0xfff || minor < 0 || minor > 0xfffff) return null;
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** Bytes of struct msghdr {name, namelen, iov, iovlen, control, controllen, flags}. */
export const MSGHDR_SIZE = 56;

/** CMSG_LEN(sizeof(int)): a struct cmsghdr (16 bytes) and one descriptor. */
export const CMSG_LEN_INT = 20;

/** CMSG_SPACE(sizeof(int)): CMSG_LEN_INT rounded up to 8 bytes. */
export const CMSG_SPACE_INT = 24;

/**
 * Encodes the control message of a descriptor sent with SCM_RIGHTS:
 * struct cmsghdr {u64 len; i32 level; i32 type} followed by the int fd.
 */
export function encodeRightsMessage(fd: number): Uint8Array<ArrayBuffer> {
  const c = new Uint8Array(CMSG_SPACE_INT);
  const v = new DataView(c.buffer);
  v.setBigUint64(0, BigInt(CMSG_LEN_INT), true);
  v.setInt32(8, SOL.SOCKET, true);
  v.setInt32(12, SCM.RIGHTS, true);
  v.setInt32(16, fd, true);
  return c;
}

/** Bytes of struct stat on x86-64 (newfstatat(2)). */
export const STAT_SIZE = 144;

/** The fields of a struct stat that archives need (x86-64 layout). */
export interface StatFields {
  /** st_dev. */
  dev: bigint;
  /** st_ino. */
  ino: bigint;
  /** st_nlink. */
  nlink: number;
  /** st_mode (type and permission bits). */
  mode: number;
  /** st_uid, as the calling user namespace sees it. */
  uid: number;
  /** st_gid, likewise. */
  gid: number;
  /** st_rdev, for device nodes. */
  rdev: number;
  /** st_size. */
  size: number;
  /** st_mtime in seconds, with the nanoseconds as a fraction. */
  mtime: number;
}

/** Every {@link StatFields} field of a struct stat (x86-64: dev 0, ino 8, nlink 16, mode 24, uid 28, gid 32, rdev 40, size 48, mtime 88/96). */
export function decodeStatFields(buf: Uint8Array): StatFields {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    dev: v.getBigUint64(0, true),
    ino: v.getBigUint64(8, true),
    nlink: Number(v.getBigUint64(16, true)),
    mode: v.getUint32(24, true),
    uid: v.getUint32(28, true),
    gid: v.getUint32(32, true),
    rdev: Number(v.getBigUint64(40, true)),
    size: Number(v.getBigInt64(48, true)),
    mtime: Number(v.getBigInt64(88, true)) + Number(v.getBigInt64(96, true)) / 1e9,
  };
}

/** st_mode and st_rdev of a struct stat (x86-64 layout: mode at 24, rdev at 40). */
export function decodeStat(buf: Uint8Array): { mode: number; rdev: number } {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { mode: v.getUint32(24, true), rdev: Number(v.getBigUint64(40, true)) };
}

/** The major and minor numbers of a device number as stat(2) reports it (`st_rdev`). */
export function decodeDev(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** Bytes of struct sockaddr_un (family + 108 bytes of path). */
export const SOCKADDR_UN_SIZE = 110;

/** struct sockaddr_un {u16 sun_family; char sun_path[108]} for a path socket, or null when the path is too long. */
export function encodeSockaddrUn(path: string): Uint8Array<ArrayBuffer> | null {
  const p = new TextEncoder().encode(path);
  if (p.length >= SOCKADDR_UN_SIZE - 2) return null;
  const b = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(b.buffer).setUint16(0, AF.UNIX, true);
  b.set(p, 2);
  return b;
}
