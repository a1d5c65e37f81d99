// The seccomp chain without a kernel: Docker's default profile resolved for
// a container's capabilities, Docker's profile format, linux.seccomp checked
// by the engine, and the compiled BPF run in a test interpreter over every
// x86-64 and aarch64 system call, argument rules, architectures and program
// size; and the aarch64 number table itself.
import assert from "node:assert/strict";
import { Errno } from "../../ffi/errno.ts";
import { SYSCALL_TABLE_AARCH64 } from "../../ffi/syscall_table_aarch64.ts";
import { SYSCALL_TABLE_X86_64 } from "../../ffi/syscall_table_x86_64.ts";
import {
  AUDIT_ARCH,
  BPF,
  CLONE,
  SECCOMP_RET,
  SIGNALS,
  type SockFilter,
} from "../../ffi/syscalls.ts";
import {
  compileSeccomp as compileFor,
  nativeSeccompArch,
  SECCOMP_ARCHES,
  type SeccompArch,
} from "../../lib/engine/seccomp_bpf.ts";
import {
  type SeccompPlan,
  seccompPlan,
  type SeccompRulePlan,
} from "../../lib/engine/seccomp_config.ts";
import { DEFAULT_CAPABILITIES } from "../../lib/spec/defaults.ts";
import { parseDockerSeccompProfile } from "../../lib/spec/seccomp_docker.ts";
import {
  DEFAULT_SECCOMP_PROFILE,
  resolveSeccompProfile,
  type SeccompProfile,
} from "../../lib/spec/seccomp_profile.ts";
import { SECCOMP_OPERATORS, type SeccompArg } from "../../lib/spec/types.ts";
import { runFilter } from "./_bpf_interpreter.ts";

const ALLOW = SECCOMP_RET.ALLOW;
const EPERM = SECCOMP_RET.ERRNO | Errno.EPERM;
const ENOSYS = SECCOMP_RET.ERRNO | Errno.ENOSYS;
const KILL = SECCOMP_RET.KILL_PROCESS;
const X86_64 = AUDIT_ARCH.X86_64;
const MAX_NR = Math.max(...Object.values(SYSCALL_TABLE_X86_64));
const X86: SeccompArch = SECCOMP_ARCHES.x86_64;
const ARM64: SeccompArch = SECCOMP_ARCHES.aarch64;

/** Compiles for x86-64 whatever the machine, as most tests here read x86-64 numbers. */
const compileSeccomp = (plan: SeccompPlan, arch: SeccompArch = X86) => compileFor(plan, arch);

/** The engine's plan of a profile resolved for `caps` on `goArch` (`amd64`, `arm64`). */
function planOf(
  profile: SeccompProfile,
  caps: readonly string[] = DEFAULT_CAPABILITIES,
  goArch = "amd64",
): SeccompPlan {
  return seccompPlan(resolveSeccompProfile(profile, { capabilities: caps, arch: goArch }));
}

/** The number of `name` on `arch`. */
const nr = (name: string, arch: SeccompArch = X86): number => {
  const n = arch.table[name];
  if (n === undefined) throw new Error(`no system call ${name} on ${arch.name}`);
  return n;
};

/** What the filter returns for `name(args…)` on `arch` (x86-64 unless given). */
function verdict(
  program: SockFilter[],
  name: string | number,
  args: bigint[] = [],
  arch: SeccompArch = X86,
): number {
  const n = typeof name === "number" ? name : nr(name, arch);
  return runFilter(program, { nr: n, arch: arch.audit, args }).ret;
}

// ---------------------------------------------------------------------------
// A reference: the plan's meaning, written directly (no BPF)

function holds(a: Required<SeccompArg>, x: bigint): boolean {
  const v = BigInt(a.value);
  switch (a.op) {
    case "SCMP_CMP_EQ":
      return x === v;
    case "SCMP_CMP_NE":
      return x !== v;
    case "SCMP_CMP_LT":
      return x < v;
    case "SCMP_CMP_LE":
      return x <= v;
    case "SCMP_CMP_GT":
      return x > v;
    case "SCMP_CMP_GE":
      return x >= v;
    case "SCMP_CMP_MASKED_EQ":
      return (x & v) === BigInt(a.valueTwo);
  }
}

function reference(plan: SeccompPlan, name: string, args: bigint[]): number {
  const ret = (r: { action: string; errno: number }) => {
    switch (r.action) {
      case "SCMP_ACT_ALLOW":
        return ALLOW;
      case "SCMP_ACT_ERRNO":
        return SECCOMP_RET.ERRNO | r.errno;
      case "SCMP_ACT_KILL_PROCESS":
        return KILL;
      case "SCMP_ACT_KILL_THREAD":
        return SECCOMP_RET.KILL_THREAD;
      case "SCMP_ACT_LOG":
        return SECCOMP_RET.LOG;
      case "SCMP_ACT_TRAP":
        return SECCOMP_RET.TRAP;
      case "SCMP_ACT_TRACE":
        return (SECCOMP_RET.TRACE | r.errno) >>> 0;
    }
    throw new Error(r.action);
  };
  const rules = plan.rules.filter((r: SeccompRulePlan) => r.names.includes(name));
  const rule = rules.find((r) => r.args.length === 0) ??
    rules.find((r) => r.args.every((a) => holds(a, BigInt.asUintN(64, args[a.index] ?? 0n))));
  return rule ? ret(rule) : ret({ action: plan.defaultAction, errno: plan.defaultErrno });
}

/** Arguments that sit on and around the values the plan compares with. */
function probes(plan: SeccompPlan): bigint[][] {
  const values = new Set<bigint>([0n, 1n, 0xffff_ffffn, 0x1_0000_0000n, 0xffff_ffff_ffff_ffffn]);
  for (const r of plan.rules) {
    for (const a of r.args) {
      for (const v of [BigInt(a.value), BigInt(a.valueTwo), BigInt(a.value) | BigInt(a.valueTwo)]) {
        for (const d of [-1n, 0n, 1n, 1n << 32n]) values.add(BigInt.asUintN(64, v + d));
      }
    }
  }
  const out: bigint[][] = [];
  for (const v of values) {
    for (let i = 0; i < 6; i++) out.push(Array.from({ length: 6 }, (_, k) => (k === i ? v : 0n)));
    out.push(Array(6).fill(v));
  }
  return out;
}

/** Runs the plan compiled for `arch` over every number of its table against the reference. */
function assertMatchesReference(plan: SeccompPlan, arch: SeccompArch = X86): void {
  const program = compileSeccomp(plan, arch);
  const args = probes(plan);
  for (const [name, n] of Object.entries(arch.table)) {
    const conditional = plan.rules.some((r) => r.names.includes(name) && r.args.length > 0);
    for (const a of conditional ? args : [[]]) {
      assert.equal(
        runFilter(program, { nr: n, arch: arch.audit, args: a }).ret,
        reference(plan, name, a),
        `${name}(${a.join(", ")})`,
      );
    }
  }
}

// ---------------------------------------------------------------------------
// Docker's default profile

Deno.test("the default filter gives every x86-64 system call what the profile says", () => {
  assertMatchesReference(planOf(DEFAULT_SECCOMP_PROFILE));
  assertMatchesReference(planOf(DEFAULT_SECCOMP_PROFILE, ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]));
});

const DEFAULT_VERDICTS: [string, number][] = [
  ["read", ALLOW],
  ["execve", ALLOW],
  ["openat2", ALLOW],
  ["io_pgetevents", ALLOW],
  ["futex_waitv", ALLOW],
  ["capset", ALLOW],
  ["setresuid", ALLOW],
  ["close_range", ALLOW],
  ["arch_prctl", ALLOW],
  ["ptrace", ALLOW],
  ["chroot", ALLOW], // CAP_SYS_CHROOT is among Docker's 14
  ["add_key", EPERM],
  ["request_key", EPERM],
  ["keyctl", EPERM],
  ["io_uring_setup", EPERM],
  ["kexec_load", EPERM],
  ["open_by_handle_at", EPERM],
  ["lookup_dcookie", EPERM],
  ["perf_event_open", EPERM],
  ["bpf", EPERM],
  ["unshare", EPERM],
  ["setns", EPERM],
  ["mount", EPERM],
  ["umount2", EPERM],
  ["pivot_root", EPERM],
  ["sethostname", EPERM],
  ["init_module", EPERM],
  ["reboot", EPERM],
  ["settimeofday", EPERM],
  ["acct", EPERM],
  ["iopl", EPERM],
  ["syslog", EPERM],
  ["vhangup", EPERM],
  ["mbind", EPERM],
  ["kcmp", EPERM],
  ["userfaultfd", EPERM],
  ["clone3", ENOSYS],
  ["afs_syscall", ENOSYS],
  ["tuxcall", ENOSYS],
  ["file_getattr", ENOSYS],
];

Deno.test("the default filter: allowed, refused (EPERM) and unknown (ENOSYS) calls", () => {
  const program = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE));
  for (const [name, expected] of DEFAULT_VERDICTS) {
    assert.equal(verdict(program, name), expected, name);
  }
  // Numbers beyond the table: a newer kernel's calls, which libc probes for.
  for (const n of [MAX_NR + 1, 600, 1000, 0x3fff_ffff]) {
    assert.equal(verdict(program, n), ENOSYS, `${n}`);
  }
});

Deno.test("the default filter: clone without namespace flags only, unless CAP_SYS_ADMIN", () => {
  const fork = BigInt(SIGNALS.SIGCHLD);
  const thread = 0x3d0f00n; // glibc's pthread_create flags (VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|…)
  const withNs = (flag: number) => fork | BigInt(flag);
  const dflt = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE));
  const admin = compileSeccomp(
    planOf(DEFAULT_SECCOMP_PROFILE, [...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]),
  );
  assert.equal(verdict(dflt, "clone", [fork]), ALLOW);
  assert.equal(verdict(dflt, "clone", [thread]), ALLOW);
  for (
    const flag of [
      CLONE.NEWUSER,
      CLONE.NEWNS,
      CLONE.NEWPID,
      CLONE.NEWNET,
      CLONE.NEWUTS,
      CLONE.NEWIPC,
      CLONE.NEWCGROUP,
    ]
  ) {
    assert.equal(verdict(dflt, "clone", [withNs(flag)]), EPERM, `flag ${flag.toString(16)}`);
    assert.equal(verdict(admin, "clone", [withNs(flag)]), ALLOW);
  }
  // Namespace flags live in the low half; the mask ignores the high one (as Docker's does).
  assert.equal(verdict(dflt, "clone", [(1n << 32n) | fork]), ALLOW);
  assert.equal(verdict(dflt, "clone", [(1n << 32n) | withNs(CLONE.NEWUSER)]), EPERM);
  assert.equal(verdict(admin, "unshare", [BigInt(CLONE.NEWUSER)]), ALLOW);
  assert.equal(verdict(admin, "clone3"), ALLOW);
});

Deno.test("the default filter: personality with the five usual personas only (others: ENOSYS, as Podman)", () => {
  const program = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE));
  for (const p of [0x0n, 0x8n, 0x20000n, 0x20008n, 0xffffffffn]) {
    assert.equal(verdict(program, "personality", [p]), ALLOW, p.toString(16));
  }
  for (const p of [0x1n, 0x40000n, 0x0400000n, 0x20009n, 0xffff_ffff_ffff_ffffn, 0x1_0000_0000n]) {
    assert.equal(verdict(program, "personality", [p]), ENOSYS, p.toString(16));
  }
});

Deno.test("the default filter: socket for every family but AF_ALG and AF_VSOCK (ENOSYS, as Podman)", () => {
  const program = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE));
  for (const family of [1n, 2n, 10n, 16n, 17n, 37n, 39n, 41n, 44n]) {
    assert.equal(verdict(program, "socket", [family, 1n, 0n]), ALLOW, `${family}`);
  }
  assert.equal(verdict(program, "socket", [38n]), ENOSYS);
  assert.equal(verdict(program, "socket", [40n]), ENOSYS);
});

Deno.test("the filter kills other architectures and x32 calls", () => {
  const program = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE));
  for (const arch of [AUDIT_ARCH.I386, AUDIT_ARCH.AARCH64, 0]) {
    assert.equal(runFilter(program, { nr: nr("read"), arch }).ret, KILL);
  }
  assert.equal(verdict(program, 0x4000_0000 | nr("read")), KILL);
  assert.equal(verdict(program, 0xffff_ffff), KILL);
});

Deno.test("the default filter is small and finds any call in a few comparisons", () => {
  const program = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE));
  assert.ok(program.length < 600, `${program.length} instructions`);
  let worst = 0;
  for (let n = 0; n <= MAX_NR; n++) {
    worst = Math.max(worst, runFilter(program, { nr: n, arch: X86_64 }).steps);
  }
  // arch load + check, nr load, ~9 levels of search, and a few argument checks.
  assert.ok(worst < 40, `worst path ${worst} instructions`);
});

Deno.test("the default profile follows the container's capabilities", () => {
  const names = (caps: string[]) =>
    resolveSeccompProfile(DEFAULT_SECCOMP_PROFILE, { capabilities: caps, arch: "amd64" }).syscalls!
      .filter((r) => r.action === "SCMP_ACT_ALLOW").flatMap((r) => r.names);
  assert.ok(!names([...DEFAULT_CAPABILITIES]).includes("mount"));
  assert.ok(names([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]).includes("mount"));
  assert.ok(names(["CAP_SYS_TIME"]).includes("settimeofday"));
  assert.ok(!names([]).includes("chroot"));
  assert.ok(names(["CAP_BPF"]).includes("bpf"));
  const arm = resolveSeccompProfile(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: "arm64" });
  assert.deepEqual(arm.architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  assert.ok(arm.syscalls!.some((r) => r.names.includes("cacheflush")));
  assert.ok(!arm.syscalls!.some((r) => r.names.includes("arch_prctl")));
});

// ---------------------------------------------------------------------------
// Docker's format

const CUSTOM = JSON.stringify({
  defaultAction: "SCMP_ACT_ALLOW",
  archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86"] }],
  syscalls: [
    { name: "mkdirat", action: "SCMP_ACT_ERRNO", errnoRet: Errno.EACCES },
    {
      names: ["getpid"],
      action: "SCMP_ACT_ERRNO",
      args: [{ index: 0, value: 5, op: "SCMP_CMP_GT" }],
    },
    {
      names: ["write"],
      action: "SCMP_ACT_KILL_PROCESS",
      args: [
        { index: 0, value: 2, op: "SCMP_CMP_EQ" },
        { index: 2, value: 0xff00, valueTwo: 0x4200, op: "SCMP_CMP_MASKED_EQ" },
      ],
    },
    { names: ["chroot"], action: "SCMP_ACT_ERRNO", includes: { caps: ["CAP_SYS_CHROOT"] } },
    { names: ["sync"], action: "SCMP_ACT_ERRNO", excludes: { caps: ["CAP_SYS_ADMIN"] } },
    { names: ["syncfs"], action: "SCMP_ACT_ERRNO", includes: { minKernel: "99.0" } },
    { names: ["fsync"], action: "SCMP_ACT_LOG", includes: { arches: ["arm64"] } },
    { names: ["kill"], action: "SCMP_ACT_TRAP", comment: "ignored", unknownKey: 1 },
  ],
});

Deno.test("a Docker-format profile: names and name, errnoRet, args, includes and excludes", () => {
  const profile = parseDockerSeccompProfile(CUSTOM, "custom.json");
  const resolved = resolveSeccompProfile(profile, {
    capabilities: DEFAULT_CAPABILITIES,
    arch: "amd64",
    kernel: [6, 1],
  });
  assert.deepEqual(resolved.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
  const plan = seccompPlan(resolved);
  const program = compileSeccomp(plan);
  assert.equal(verdict(program, "read"), ALLOW);
  assert.equal(verdict(program, "mkdirat"), SECCOMP_RET.ERRNO | Errno.EACCES);
  assert.equal(verdict(program, "getpid", [5n]), ALLOW);
  assert.equal(verdict(program, "getpid", [6n]), EPERM);
  assert.equal(verdict(program, "write", [2n, 0n, 0x4242n]), KILL);
  assert.equal(verdict(program, "write", [2n, 0n, 0x4342n]), ALLOW);
  assert.equal(verdict(program, "write", [1n, 0n, 0x4242n]), ALLOW);
  assert.equal(verdict(program, "chroot"), EPERM); // CAP_SYS_CHROOT is held
  assert.equal(verdict(program, "sync"), EPERM); // CAP_SYS_ADMIN is not
  assert.equal(verdict(program, "syncfs"), ALLOW); // needs Linux 99
  assert.equal(verdict(program, "fsync"), ALLOW); // arm64 only
  assert.equal(verdict(program, "kill"), SECCOMP_RET.TRAP);
  assertMatchesReference(plan);
});

const BAD_PROFILES: [string, string, RegExp][] = [
  ["not JSON", "{", /not valid JSON/],
  ["a list", "[]", /\(document\): must be a JSON object/],
  ["no defaultAction", "{}", /defaultAction: unknown action undefined/],
  ["an unknown action", `{"defaultAction":"SCMP_ACT_PERHAPS"}`, /SCMP_ACT_PERHAPS/],
  [
    "architectures and archMap",
    `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[]}`,
    /archMap: .*use one/,
  ],
  [
    "name and names",
    `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ERRNO"}]}`,
    /syscalls\[0\]: 'name' and 'names'/,
  ],
  [
    "an unknown operator",
    `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ODD"}]}]}`,
    /syscalls\[0\]\.args\[0\]\.op: unknown operator "SCMP_CMP_ODD"/,
  ],
  [
    "an argument index 7",
    `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
    /args\[0\]\.index: must be 0 to 5/,
  ],
  [
    "a negative errnoRet",
    `{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":-1}`,
    /defaultErrnoRet: must be a non-negative integer/,
  ],
  [
    "a listener",
    `{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x"}`,
    /listenerPath: trun has no/,
  ],
];
for (const [what, text, message] of BAD_PROFILES) {
  Deno.test(`parseDockerSeccompProfile() refuses ${what}, naming the file and field`, () => {
    assert.throws(() => parseDockerSeccompProfile(text, "p.json"), (e: Error) => {
      assert.match(e.message, /seccomp profile "p\.json"/);
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("Podman's profile (containers/common seccomp.json) compiles and runs as the reference says", async () => {
  const url = new URL("./fixtures/podman_config.json", import.meta.url);
  const plan = seccompPlan(JSON.parse(await Deno.readTextFile(url)).linux.seccomp);
  assertMatchesReference(plan);
  const program = compileSeccomp(plan);
  assert.equal(verdict(program, "kexec_load"), EPERM);
  assert.equal(verdict(program, "add_key"), ENOSYS);
});

// ---------------------------------------------------------------------------
// Operators, long jumps and the size limit

const OPS = SECCOMP_OPERATORS.filter((op) => op !== "SCMP_CMP_MASKED_EQ");

Deno.test("every operator compares all 64 bits, unsigned", () => {
  const values = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 2 ** 53 - 1];
  for (const op of OPS) {
    for (const value of values) {
      const plan = seccompPlan({
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["read"], action: "SCMP_ACT_ERRNO", args: [{ index: 3, value, op }] }],
      });
      assertMatchesReference(plan);
    }
  }
  for (const [mask, datum] of [[0xff, 0x12], [0xffff_0000_0000, 0x1234_0000_0000], [0, 0]]) {
    assertMatchesReference(seccompPlan({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{
        names: ["read"],
        action: "SCMP_ACT_ERRNO",
        args: [{ index: 5, value: mask!, valueTwo: datum!, op: "SCMP_CMP_MASKED_EQ" }],
      }],
    }));
  }
});

Deno.test("far jumps go through ja; a program beyond 4096 instructions is refused", () => {
  // Conditional rules on many calls make the search tree's halves longer than 255.
  const names = Object.keys(SYSCALL_TABLE_X86_64).slice(0, 120);
  const big = seccompPlan({
    defaultAction: "SCMP_ACT_ERRNO",
    syscalls: names.map((n, i) => ({
      names: [n],
      action: "SCMP_ACT_ALLOW" as const,
      args: [{ index: i % 6, value: i * 0x1_0000_0001, op: OPS[i % OPS.length]! }],
    })),
  });
  const program = compileSeccomp(big);
  assert.ok(program.some((i) => i.code === BPF.JA), "a long jump");
  assertMatchesReference(big);
  const huge = seccompPlan({
    defaultAction: "SCMP_ACT_ALLOW",
    syscalls: Object.keys(SYSCALL_TABLE_X86_64).flatMap((n) =>
      Array.from({ length: 3 }, (_, i) => ({
        names: [n],
        action: "SCMP_ACT_ERRNO" as const,
        args: [{ index: 0, value: i, op: "SCMP_CMP_EQ" as const }],
      }))
    ),
  });
  assert.throws(() => compileSeccomp(huge), /instructions; the kernel takes at most 4096/);
});

Deno.test("compiling the default filter takes a few milliseconds at most", () => {
  const plan = planOf(DEFAULT_SECCOMP_PROFILE);
  compileSeccomp(plan);
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) compileSeccomp(plan);
  const each = (performance.now() - t0) / 20;
  assert.ok(each < 5, `${each.toFixed(2)} ms per compile`);
});

// ---------------------------------------------------------------------------
// aarch64: the number table and the default filter compiled for it

/** Numbers checked against the kernel (scripts/syscall.tbl, asm-generic/unistd.h). */
const AARCH64_NUMBERS: [string, number][] = [
  ["io_setup", 0],
  ["getcwd", 17],
  ["lookup_dcookie", 18],
  ["dup", 23],
  ["fcntl", 25],
  ["ioctl", 29],
  ["mkdirat", 34],
  ["renameat", 38],
  ["umount2", 39],
  ["mount", 40],
  ["pivot_root", 41],
  ["nfsservctl", 42],
  ["statfs", 43],
  ["fstatfs", 44],
  ["truncate", 45],
  ["ftruncate", 46],
  ["openat", 56],
  ["close", 57],
  ["getdents64", 61],
  ["lseek", 62],
  ["read", 63],
  ["write", 64],
  ["sendfile", 71],
  ["pselect6", 72],
  ["ppoll", 73],
  ["newfstatat", 79],
  ["fstat", 80],
  ["sync_file_range", 84],
  ["personality", 92],
  ["exit", 93],
  ["exit_group", 94],
  ["unshare", 97],
  ["futex", 98],
  ["nanosleep", 101],
  ["kexec_load", 104],
  ["ptrace", 117],
  ["rt_sigreturn", 139],
  ["reboot", 142],
  ["uname", 160],
  ["sethostname", 161],
  ["getrlimit", 163],
  ["setrlimit", 164],
  ["prctl", 167],
  ["getpid", 172],
  ["gettid", 178],
  ["socket", 198],
  ["recvmmsg", 243],
  ["add_key", 217],
  ["request_key", 218],
  ["keyctl", 219],
  ["clone", 220],
  ["execve", 221],
  ["mmap", 222],
  ["fadvise64", 223],
  ["mprotect", 226],
  ["perf_event_open", 241],
  ["wait4", 260],
  ["prlimit64", 261],
  ["open_by_handle_at", 265],
  ["setns", 268],
  ["seccomp", 277],
  ["bpf", 280],
  ["userfaultfd", 282],
  ["statx", 291],
  ["rseq", 293],
  ["kexec_file_load", 294],
  ["pidfd_send_signal", 424],
  ["io_uring_setup", 425],
  ["io_uring_enter", 426],
  ["io_uring_register", 427],
  ["clone3", 435],
  ["close_range", 436],
  ["openat2", 437],
  ["memfd_secret", 447],
  ["futex_waitv", 449],
  ["cachestat", 451],
  ["fchmodat2", 452],
  ["map_shadow_stack", 453],
  ["futex_requeue", 456],
  ["statmount", 457],
  ["listmount", 458],
  ["lsm_get_self_attr", 459],
  ["lsm_set_self_attr", 460],
  ["lsm_list_modules", 461],
  ["mseal", 462],
  ["setxattrat", 463],
  ["getxattrat", 464],
  ["listxattrat", 465],
  ["removexattrat", 466],
  ["open_tree_attr", 467],
  ["file_getattr", 468],
  ["file_setattr", 469],
];

Deno.test("the aarch64 table has the kernel's numbers", () => {
  for (const [name, n] of AARCH64_NUMBERS) assert.equal(SYSCALL_TABLE_AARCH64[name], n, name);
});

Deno.test("the aarch64 table fills the generic layout once: 0–243, 260–294, 424–469", () => {
  const numbers = Object.values(SYSCALL_TABLE_AARCH64).sort((a, b) => a - b);
  assert.equal(new Set(numbers).size, numbers.length, "a number given to two names");
  const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  // 244–259 are per-architecture (arm64 has none); 295–423 are unused on 64-bit.
  assert.deepEqual(numbers, [...range(0, 243), ...range(260, 294), ...range(424, 469)]);
  assert.equal(numbers.length, 325);
  // The x86-64 table ends at the same kernel: its newest calls are here too.
  for (const name of ["file_getattr", "file_setattr", "open_tree_attr", "mseal"]) {
    assert.ok(name in SYSCALL_TABLE_X86_64 && name in SYSCALL_TABLE_AARCH64, name);
  }
});

/**
 * The default profile's calls that arm64 lacks though x86-64 has them: the
 * legacy calls the generic table replaced (open → openat, fork → clone…)
 * and x86-only ones. 32-bit names (fcntl64, *_time64…) are absent from both.
 */
const ABSENT_ON_AARCH64 = `_sysctl access alarm arch_prctl chmod chown creat create_module dup2
  epoll_create epoll_ctl_old epoll_wait epoll_wait_old eventfd fork futimesat get_kernel_syms
  get_thread_area getdents getpgrp inotify_init ioperm iopl lchown link lstat mkdir mknod
  modify_ldt open pause pipe poll query_module readlink rename rmdir select set_thread_area
  signalfd stat symlink sysfs time unlink uretprobe uselib ustat utime utimes vfork`.split(/\s+/);

Deno.test("the default profile's names on aarch64: present with a number, or known to be absent", () => {
  const names = new Set(DEFAULT_SECCOMP_PROFILE.rules.flatMap((r) => r.names));
  const absent = [...names].filter((n) => !(n in SYSCALL_TABLE_AARCH64));
  assert.deepEqual(absent.filter((n) => n in SYSCALL_TABLE_X86_64).sort(), ABSENT_ON_AARCH64);
  for (const n of absent.filter((n) => !(n in SYSCALL_TABLE_X86_64))) {
    assert.doesNotMatch(n, /^(open|openat|read|write|clone|execve|stat|fstat|mmap|futex)$/);
  }
  // What a libc on arm64 calls instead.
  for (const n of ["openat", "clone", "pipe2", "ppoll", "dup3", "newfstatat", "renameat2"]) {
    assert.ok(names.has(n) && n in SYSCALL_TABLE_AARCH64, n);
  }
  // Every arm64 name is an x86-64 name too (same generic calls, same kernel).
  assert.deepEqual(
    Object.keys(SYSCALL_TABLE_AARCH64).filter((n) => !(n in SYSCALL_TABLE_X86_64)),
    [],
  );
});

Deno.test("the default filter for aarch64 gives every aarch64 system call what the profile says", () => {
  assertMatchesReference(planOf(DEFAULT_SECCOMP_PROFILE, DEFAULT_CAPABILITIES, "arm64"), ARM64);
  assertMatchesReference(
    planOf(DEFAULT_SECCOMP_PROFILE, ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"], "arm64"),
    ARM64,
  );
});

Deno.test("the default filter for aarch64: allowed, refused (EPERM) and unknown (ENOSYS) calls", () => {
  const program = compileSeccomp(
    planOf(DEFAULT_SECCOMP_PROFILE, DEFAULT_CAPABILITIES, "arm64"),
    ARM64,
  );
  const expected: [string, number][] = [
    ...DEFAULT_VERDICTS.filter(([name]) => name in SYSCALL_TABLE_AARCH64),
    ["openat", ALLOW],
    ["renameat", ALLOW],
    ["getrlimit", ALLOW],
    ["memfd_secret", ALLOW],
    ["newfstatat", ALLOW],
    ["fstat", ALLOW],
    ["mmap", ALLOW],
    ["fadvise64", ALLOW],
    ["sync_file_range", ALLOW],
    ["mseal", ALLOW],
    ["nfsservctl", EPERM],
    ["setxattrat", ALLOW],
  ];
  assert.ok(expected.length > DEFAULT_VERDICTS.length - 5, "the x86-64 verdicts mostly apply");
  for (const [name, want] of expected) {
    assert.equal(verdict(program, name, [], ARM64), want, name);
  }
  // The same call gets the same verdict on both architectures.
  const x86 = planOf(DEFAULT_SECCOMP_PROFILE);
  const arm = planOf(DEFAULT_SECCOMP_PROFILE, DEFAULT_CAPABILITIES, "arm64");
  for (const name of Object.keys(SYSCALL_TABLE_AARCH64)) {
    assert.equal(reference(arm, name, []), reference(x86, name, []), name);
  }
  // Beyond the table: a newer kernel's calls (listns is 470), asm-generic's
  // legacy numbers (1024 was `open`) and x32-looking numbers all get ENOSYS;
  // aarch64 has no second ABI on the same arch value to kill.
  for (const n of [470, 1024, 1079, 0x4000_0000 | 63, 0xffff_ffff]) {
    assert.equal(verdict(program, n, [], ARM64), ENOSYS, `${n}`);
  }
});

Deno.test("the default filter for aarch64: clone flags, personality and socket as on x86-64", () => {
  const caps = DEFAULT_CAPABILITIES;
  const program = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE, caps, "arm64"), ARM64);
  const admin = compileSeccomp(
    planOf(DEFAULT_SECCOMP_PROFILE, [...caps, "CAP_SYS_ADMIN"], "arm64"),
    ARM64,
  );
  const fork = BigInt(SIGNALS.SIGCHLD);
  assert.equal(verdict(program, "clone", [fork], ARM64), ALLOW);
  assert.equal(verdict(program, "clone", [0x3d0f00n], ARM64), ALLOW);
  for (const flag of [CLONE.NEWUSER, CLONE.NEWNS, CLONE.NEWPID, CLONE.NEWNET]) {
    assert.equal(verdict(program, "clone", [fork | BigInt(flag)], ARM64), EPERM);
    assert.equal(verdict(admin, "clone", [fork | BigInt(flag)], ARM64), ALLOW);
  }
  assert.equal(verdict(program, "clone3", [], ARM64), ENOSYS);
  assert.equal(verdict(admin, "clone3", [], ARM64), ALLOW);
  assert.equal(verdict(program, "personality", [0x8n], ARM64), ALLOW);
  assert.equal(verdict(program, "personality", [0x40000n], ARM64), ENOSYS);
  assert.equal(verdict(program, "socket", [2n, 1n, 0n], ARM64), ALLOW);
  assert.equal(verdict(program, "socket", [38n], ARM64), ENOSYS);
});

Deno.test("the aarch64 filter kills x86-64, AArch32 and other architectures; x86-64's kills aarch64", () => {
  const arm = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE, DEFAULT_CAPABILITIES, "arm64"), ARM64);
  assert.equal(arm[1]!.k, AUDIT_ARCH.AARCH64);
  for (const arch of [AUDIT_ARCH.X86_64, AUDIT_ARCH.ARM, AUDIT_ARCH.I386, 0]) {
    assert.equal(runFilter(arm, { nr: nr("read", ARM64), arch }).ret, KILL, arch.toString(16));
  }
  assert.equal(runFilter(arm, { nr: nr("read", ARM64), arch: AUDIT_ARCH.AARCH64 }).ret, ALLOW);
  const x86 = compileSeccomp(planOf(DEFAULT_SECCOMP_PROFILE));
  // read on arm64 is 63, x86-64's `shmdt`… the arch check must come first.
  assert.equal(runFilter(x86, { nr: 63, arch: AUDIT_ARCH.AARCH64 }).ret, KILL);
});

Deno.test("the default filter for aarch64 is small and finds any call in a few comparisons", () => {
  const program = compileSeccomp(
    planOf(DEFAULT_SECCOMP_PROFILE, DEFAULT_CAPABILITIES, "arm64"),
    ARM64,
  );
  assert.ok(program.length < 600, `${program.length} instructions`);
  let worst = 0;
  for (let n = 0; n <= 469; n++) {
    worst = Math.max(worst, runFilter(program, { nr: n, arch: AUDIT_ARCH.AARCH64 }).steps);
  }
  assert.ok(worst < 40, `worst path ${worst} instructions`);
});

Deno.test("the machine's architecture picks the table: x86-64 here, aarch64 on arm64", () => {
  assert.equal(nativeSeccompArch("x86_64"), SECCOMP_ARCHES.x86_64);
  assert.equal(nativeSeccompArch("aarch64"), SECCOMP_ARCHES.aarch64);
  const plan = planOf(DEFAULT_SECCOMP_PROFILE);
  assert.deepEqual(compileFor(plan), compileFor(plan, nativeSeccompArch(Deno.build.arch)));
  if (Deno.build.arch === "x86_64") assert.deepEqual(compileFor(plan), compileFor(plan, X86));
  // The profile's native architecture names the same one the compiler targets.
  const arm = resolveSeccompProfile(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: "arm64" });
  assert.equal(arm.architectures?.[0], ARM64.name);
  const x86 = resolveSeccompProfile(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: "amd64" });
  assert.equal(x86.architectures?.[0], X86.name);
});
