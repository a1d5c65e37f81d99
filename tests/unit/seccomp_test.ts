// The seccomp chain without a kernel: Docker's default profile resolved for
// a container's capabilities, Docker's profile format, linux.seccomp checked
// by the engine, and the compiled BPF run in a test interpreter over every
// x86-64 system call, argument rules, architectures and program size.
import assert from "node:assert/strict";
import { Errno } from "../../ffi/errno.ts";
import { SYSCALL_TABLE_X86_64 } from "../../ffi/syscall_table_x86_64.ts";
import {
  AUDIT_ARCH,
  BPF,
  CLONE,
  SECCOMP_RET,
  SIGNALS,
  type SockFilter,
} from "../../ffi/syscalls.ts";
import { compileSeccomp } from "../../lib/engine/seccomp_bpf.ts";
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

/** The engine's plan of a profile resolved for `caps`. */
function planOf(
  profile: SeccompProfile,
  caps: readonly string[] = DEFAULT_CAPABILITIES,
): SeccompPlan {
  return seccompPlan(resolveSeccompProfile(profile, { capabilities: caps, arch: "amd64" }));
}

const nr = (name: string): number => {
  const n = SYSCALL_TABLE_X86_64[name];
  if (n === undefined) throw new Error(`no system call ${name}`);
  return n;
};

/** What the filter returns for `name(args…)` on x86-64. */
function verdict(program: SockFilter[], name: string | number, args: bigint[] = []): number {
  return runFilter(program, { nr: typeof name === "number" ? name : nr(name), arch: X86_64, args })
    .ret;
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

function assertMatchesReference(plan: SeccompPlan): void {
  const program = compileSeccomp(plan);
  const args = probes(plan);
  for (const [name, n] of Object.entries(SYSCALL_TABLE_X86_64)) {
    const conditional = plan.rules.some((r) => r.names.includes(name) && r.args.length > 0);
    for (const a of conditional ? args : [[]]) {
      assert.equal(
        runFilter(program, { nr: n, arch: X86_64, args: a }).ret,
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
