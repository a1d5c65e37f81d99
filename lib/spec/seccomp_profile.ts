/**
 * Seccomp profiles in Docker's model (rules gated by capabilities,
 * architectures and kernel versions), Docker's default profile as data, and
 * the step that turns a profile into the OCI `linux.seccomp` of one
 * container.
 *
 * The default profile is Docker's (moby/profiles seccomp default.json):
 * the same allowed system calls, the same argument rules (`clone` without
 * namespace flags, `personality` with the five usual personas, `socket`
 * without AF_ALG and AF_VSOCK) and the same capability-gated groups. Where
 * Podman's (containers/common pkg/seccomp/seccomp.json) differs, trun takes
 * Podman's choice on what refusals return:
 *
 * - a system call the profile does not name gets ENOSYS (Podman's
 *   `defaultErrnoRet` 38) instead of EPERM, so a newer libc probing a call
 *   this kernel or profile does not know falls back, as it does without a
 *   filter; `clone3` without CAP_SYS_ADMIN gets ENOSYS too (Docker and Podman
 *   agree there), so glibc falls back to `clone`, whose flags are checked;
 * - a call the profile refuses on purpose gets EPERM: `clone` with a
 *   namespace flag (one rule per flag), and every capability-gated
 *   group has an EPERM twin for containers without the capability (Podman
 *   lists them explicitly), and the calls Docker leaves out because they are
 *   dangerous (Podman's EPERM list: kexec, swapon, userfaultfd…, plus
 *   Docker's omissions `add_key`, `keyctl`, `request_key`, `io_uring_*`,
 *   `pivot_root`) are named with EPERM.
 *
 * `personality` with another persona and `socket` with AF_ALG or AF_VSOCK
 * get the default ENOSYS, as with Podman's profile: an EPERM twin of an
 * argument rule would need an unconditional rule for the same call, which
 * libseccomp (runc, crun) lets override the conditional ones, so the same
 * config.json would refuse every call there.
 *
 * One addition of trun's own: `mknod`/`mknodat` of character and block
 * devices get EPERM (files, fifos and sockets are allowed), because trun
 * has no device cgroup to refuse opening them (see nodeRules).
 *
 * Docker's allow list is kept where it is newer than Podman's (the futex2
 * calls, `cachestat`, `mseal`, `statmount`…), and `keyctl` stays refused
 * as in Docker (Podman allows it). Rules only for s390, ppc64le, riscv64 and
 * MIPS are left out: trun compiles x86-64 and aarch64 filters (names the
 * target lacks, such as `open` or `fork` on aarch64, are skipped there).
 */
import { Errno } from "../../ffi/errno.ts";
import { CLONE } from "../../ffi/syscalls.ts";
import type { Seccomp, SeccompAction, SeccompArg, SeccompSyscall } from "./types.ts";

/** Conditions under which a profile rule applies (Docker's `includes` and `excludes`). */
export interface RuleFilter {
  /** Capabilities (`CAP_…`): includes needs all of them, excludes drops the rule on any. */
  caps?: readonly string[];
  /** Architectures in Go's names (`amd64`, `arm64`, `x32`, `386`…). */
  arches?: readonly string[];
  /** A kernel version (`4.8`): includes needs at least this one. */
  minKernel?: string;
}

/** One rule of a profile. */
export interface ProfileRule {
  /** System call names (names unknown on an architecture are ignored there). */
  names: readonly string[];
  /** What happens when the rule matches. */
  action: SeccompAction;
  /** The errno of SCMP_ACT_ERRNO (default EPERM). */
  errnoRet?: number;
  /** Argument conditions, all of which must hold. */
  args?: readonly SeccompArg[];
  /** The rule applies only when all of these hold. */
  includes?: RuleFilter;
  /** The rule is dropped when any of these holds. */
  excludes?: RuleFilter;
}

/** A seccomp profile in Docker's model. */
export interface SeccompProfile {
  /** Action for system calls no rule names. */
  defaultAction: SeccompAction;
  /** Its errno, for SCMP_ACT_ERRNO. */
  defaultErrnoRet?: number;
  /** Per native architecture (SCMP_ARCH_*), the architectures the filter accepts besides it. */
  archMap: readonly { architecture: string; subArchitectures: readonly string[] }[];
  /**
   * The rules, in order. For one system call a rule without conditions
   * decides alone; else the first whose conditions hold (as libseccomp).
   */
  rules: readonly ProfileRule[];
  /** SECCOMP_FILTER_FLAG_* names. */
  flags?: readonly string[];
}

/** A whitespace-separated list of names, as an array. */
function names(list: string): string[] {
  return list.trim().split(/\s+/);
}

const ALLOW: SeccompAction = "SCMP_ACT_ALLOW";
const ERRNO: SeccompAction = "SCMP_ACT_ERRNO";

/** Docker's unconditionally allowed system calls. */
const ALLOWED = names(`
  _llseek _newselect accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir
  chmod chown chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
  clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range
  creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
  epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2
  fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32
  fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
  fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
  futex_wait futex_waitv futex_wake futimesat get_robust_list get_thread_area getcpu getcwd
  getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32
  getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid getresgid32
  getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday
  getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init inotify_init1
  inotify_rm_watch io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup
  io_submit ioctl ioprio_get ioprio_set ipc kill landlock_add_rule landlock_create_ruleset
  landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listmount listxattr
  listxattrat llistxattr lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
  membarrier memfd_create memfd_secret mincore mkdir mkdirat mlock mlock2 mlockall
  mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
  mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync
  munlock munlockall munmap name_to_handle_at nanosleep newfstatat open openat openat2 pause
  pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
  ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
  pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
  recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2
  restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
  rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
  rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
  sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
  sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
  semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
  sendto set_robust_list set_thread_area set_tid_address setfsgid setfsgid32 setfsuid setfsuid32
  setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32
  setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid setsockopt
  setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown sigaltstack signalfd
  signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64
  statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time
  timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
  timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
  timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat
  uretprobe utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
  writev
`);

/**
 * Groups allowed only with a capability (Docker's `includes.caps`); each
 * also gets an EPERM twin for containers without it.
 */
const CAPABILITY_GROUPS: readonly { caps: string; names: string[] }[] = [
  { caps: "CAP_DAC_READ_SEARCH", names: names("open_by_handle_at") },
  {
    caps: "CAP_SYS_ADMIN",
    names: names(`bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
      lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount open_tree
      perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2
      unshare`),
  },
  { caps: "CAP_SYS_BOOT", names: names("reboot") },
  { caps: "CAP_SYS_CHROOT", names: names("chroot") },
  { caps: "CAP_SYS_MODULE", names: names("delete_module init_module finit_module") },
  { caps: "CAP_SYS_PACCT", names: names("acct") },
  {
    caps: "CAP_SYS_PTRACE",
    names: names("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace"),
  },
  { caps: "CAP_SYS_RAWIO", names: names("iopl ioperm") },
  { caps: "CAP_SYS_TIME", names: names("settimeofday stime clock_settime clock_settime64") },
  { caps: "CAP_SYS_TTY_CONFIG", names: names("vhangup") },
  {
    caps: "CAP_SYS_NICE",
    names: names("get_mempolicy mbind set_mempolicy set_mempolicy_home_node"),
  },
  { caps: "CAP_SYSLOG", names: names("syslog") },
  { caps: "CAP_BPF", names: names("bpf") },
  { caps: "CAP_PERFMON", names: names("perf_event_open") },
];

/** Calls refused with EPERM whatever the capabilities (see the module header). */
const REFUSED = names(`_sysctl add_key bdflush create_module get_kernel_syms io_uring_enter
  io_uring_register io_uring_setup kexec_file_load kexec_load keyctl migrate_pages move_pages
  nfsservctl pciconfig_iobase pciconfig_read pciconfig_write pivot_root query_module request_key
  swapoff swapon sysfs uselib userfaultfd ustat vm86 vm86old`);

/** The namespace flags `clone` may not carry without CAP_SYS_ADMIN (Docker's mask 0x7e020000). */
const CLONE_NAMESPACE_FLAGS = CLONE.NEWNS | CLONE.NEWCGROUP | CLONE.NEWUTS | CLONE.NEWIPC |
  CLONE.NEWUSER | CLONE.NEWPID | CLONE.NEWNET;

/** The namespace flags one by one. */
function namespaceFlags(): number[] {
  const out: number[] = [];
  for (let bit = 1; bit <= CLONE_NAMESPACE_FLAGS; bit *= 2) {
    if (CLONE_NAMESPACE_FLAGS & bit) out.push(bit);
  }
  return out;
}

/** The file type bits of mknod's mode, and the types it may make without a device cgroup. */
const S_IFMT = 0o170000;
const NODE_TYPES_ALLOWED = [0, 0o100000, 0o010000, 0o140000]; // regular (both spellings), fifo, socket
const NODE_TYPES_REFUSED = [0o020000, 0o060000]; // character and block devices

/**
 * `mknod`/`mknodat` by the type they make: files, fifos and sockets are
 * allowed; device nodes are refused (EPERM). Docker allows them and relies
 * on its device cgroup to refuse opening them; trun has no device cgroup
 * yet, and a real-root container with CAP_MKNOD could otherwise make and
 * open a host disk. Rootless it changes nothing: a user namespace cannot
 * make device nodes anyway. `--privileged` (no filter) and `--device`
 * (made by trun) still give devices.
 */
function nodeRules(): ProfileRule[] {
  const rule = (name: string, index: number, type: number, refused: boolean): ProfileRule => ({
    names: [name],
    action: refused ? ERRNO : ALLOW,
    ...(refused ? { errnoRet: Errno.EPERM } : {}),
    args: [{ index, value: S_IFMT, valueTwo: type, op: "SCMP_CMP_MASKED_EQ" }],
  });
  return [["mknod", 1], ["mknodat", 2]].flatMap(([name, index]) => [
    ...NODE_TYPES_ALLOWED.map((t) => rule(name as string, index as number, t, false)),
    ...NODE_TYPES_REFUSED.map((t) => rule(name as string, index as number, t, true)),
  ]);
}

/** The personas `personality` may set: PER_LINUX, PER_LINUX32, UNAME26, both, and a query (-1). */
const PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** Allowed to everyone from Linux 4.8 (seccomp can no longer be bypassed with ptrace there). */
const PTRACE_SINCE_4_8 = names("process_vm_readv process_vm_writev ptrace");

/** The capabilities whose groups also allow a call: its EPERM twin is dropped when any is held. */
function capsAllowing(name: string): string[] {
  return CAPABILITY_GROUPS.filter((g) => g.names.includes(name)).map((g) => g.caps);
}

/** Every name of the capability groups, once, each refused unless one of its capabilities is held. */
function capabilityRefusals(): ProfileRule[] {
  const byCaps = new Map<string, string[]>();
  for (const name of new Set(CAPABILITY_GROUPS.flatMap((g) => g.names))) {
    // ptrace and process_vm_* are allowed to everyone on Linux ≥ 4.8 (below);
    // clone and clone3 have argument and ENOSYS rules of their own.
    if (PTRACE_SINCE_4_8.includes(name) || name === "clone" || name === "clone3") continue;
    const key = capsAllowing(name).join(" ");
    byCaps.set(key, [...(byCaps.get(key) ?? []), name]);
  }
  return [...byCaps].map(([caps, list]) => ({
    names: list,
    action: ERRNO,
    errnoRet: Errno.EPERM,
    excludes: { caps: names(caps) },
  }));
}

/** Docker's default profile with Podman's refusal errnos (see the module header). */
export const DEFAULT_SECCOMP_PROFILE: SeccompProfile = {
  defaultAction: ERRNO,
  defaultErrnoRet: Errno.ENOSYS,
  archMap: [
    { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
    { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
  ],
  rules: [
    { names: ALLOWED, action: ALLOW },
    { names: PTRACE_SINCE_4_8, action: ALLOW, includes: { minKernel: "4.8" } },
    // socket: every family but AF_ALG (38) and AF_VSOCK (40).
    { names: ["socket"], action: ALLOW, args: [{ index: 0, value: 38, op: "SCMP_CMP_LT" }] },
    { names: ["socket"], action: ALLOW, args: [{ index: 0, value: 39, op: "SCMP_CMP_EQ" }] },
    { names: ["socket"], action: ALLOW, args: [{ index: 0, value: 40, op: "SCMP_CMP_GT" }] },
    ...PERSONAS.map((value): ProfileRule => ({
      names: ["personality"],
      action: ALLOW,
      args: [{ index: 0, value, op: "SCMP_CMP_EQ" }],
    })),
    { names: ["arch_prctl"], action: ALLOW, includes: { arches: ["amd64", "x32"] } },
    { names: ["modify_ldt"], action: ALLOW, includes: { arches: ["amd64", "x32", "386"] } },
    {
      names: names(
        "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
      ),
      action: ALLOW,
      includes: { arches: ["arm", "arm64"] },
    },
    ...CAPABILITY_GROUPS.map((g): ProfileRule => ({
      names: g.names,
      action: ALLOW,
      includes: { caps: [g.caps] },
    })),
    // Threads and plain forks, without namespace flags (x86 and arm order: flags first).
    {
      names: ["clone"],
      action: ALLOW,
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
      excludes: { caps: ["CAP_SYS_ADMIN"] },
    },
    // ...and EPERM with any of them: one rule per flag, so no rule of clone
    // overlaps another of a different action (libseccomp, which runc and
    // crun use, lets an unconditional rule override conditional ones).
    ...namespaceFlags().map((flag): ProfileRule => ({
      names: ["clone"],
      action: ERRNO,
      errnoRet: Errno.EPERM,
      args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
      excludes: { caps: ["CAP_SYS_ADMIN"] },
    })),
    // glibc falls back to clone on ENOSYS; clone3's flags sit in memory a filter cannot read.
    {
      names: ["clone3"],
      action: ERRNO,
      errnoRet: Errno.ENOSYS,
      excludes: { caps: ["CAP_SYS_ADMIN"] },
    },
    ...nodeRules(),
    ...capabilityRefusals(),
    { names: REFUSED, action: ERRNO, errnoRet: Errno.EPERM },
  ],
};

/** What a profile is resolved against: the container's capabilities and the machine. */
export interface ProfileTarget {
  /** The container's bounding capabilities (Docker reads the bounding set). */
  capabilities: readonly string[];
  /** The native architecture in Go's names (`amd64`, `arm64`). */
  arch: string;
  /** The kernel version as [major, minor]; absent: every `minKernel` holds (trun needs Linux ≥ 5.8). */
  kernel?: readonly [number, number];
}

/** The SCMP_ARCH_* name of a Go architecture name. */
const SCMP_ARCH: Readonly<Record<string, string>> = {
  amd64: "SCMP_ARCH_X86_64",
  "386": "SCMP_ARCH_X86",
  x32: "SCMP_ARCH_X32",
  arm64: "SCMP_ARCH_AARCH64",
  arm: "SCMP_ARCH_ARM",
};

/** The Go architecture name of `Deno.build.arch`. */
export function goArch(denoArch: string): string {
  return denoArch === "aarch64" ? "arm64" : denoArch === "x86_64" ? "amd64" : denoArch;
}

function kernelAtLeast(version: string, kernel: readonly [number, number] | undefined): boolean {
  if (!kernel) return true;
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return kernel[0] > major || (kernel[0] === major && kernel[1] >= minor);
}

/** Whether a rule applies to the target (Docker's includes: all hold; excludes: none holds). */
function applies(rule: ProfileRule, t: ProfileTarget): boolean {
  const has = (cap: string) => t.capabilities.includes(cap);
  const inc = rule.includes ?? {};
  const exc = rule.excludes ?? {};
  if (inc.caps && !inc.caps.every(has)) return false;
  if (inc.arches && !inc.arches.includes(t.arch)) return false;
  if (inc.minKernel && !kernelAtLeast(inc.minKernel, t.kernel)) return false;
  if (exc.caps && exc.caps.some(has)) return false;
  if (exc.arches && exc.arches.includes(t.arch)) return false;
  if (exc.minKernel && kernelAtLeast(exc.minKernel, t.kernel)) return false;
  return true;
}

/**
 * The OCI `linux.seccomp` of a profile for one container: the rules that
 * apply to its capabilities and architecture, in order, and the
 * architectures of the native entry of the profile's archMap.
 */
export function resolveSeccompProfile(profile: SeccompProfile, target: ProfileTarget): Seccomp {
  const native = SCMP_ARCH[target.arch] ?? `SCMP_ARCH_${target.arch.toUpperCase()}`;
  const entry = profile.archMap.find((a) => a.architecture === native);
  const syscalls: SeccompSyscall[] = profile.rules.filter((r) => applies(r, target)).map((r) => ({
    names: [...r.names],
    action: r.action,
    ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
    ...(r.args?.length ? { args: r.args.map((a) => ({ ...a })) } : {}),
  }));
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures: entry ? [entry.architecture, ...entry.subArchitectures] : [],
    ...(profile.flags?.length ? { flags: [...profile.flags] } : {}),
    syscalls,
  };
}
