/**
 * Compiles a checked seccomp filter (`SeccompPlan`) to classic BPF for
 * x86-64 or aarch64 (the machine's own by default), the program seccomp(2)
 * installs. Pure: the result is a list of instructions, unit-tested by
 * running it in an interpreter.
 *
 * Layout:
 * 1. `seccomp_data.arch` must be the target's AUDIT_ARCH (AUDIT_ARCH_X86_64
 *    or AUDIT_ARCH_AARCH64); any other (i386 through `int 0x80`, AArch32
 *    compat) kills the process, as libseccomp's default bad-architecture
 *    action does. trun compiles native numbers only, so SCMP_ARCH_X86,
 *    SCMP_ARCH_X32 and SCMP_ARCH_ARM in `architectures` are accepted but not
 *    compiled: their system calls are killed too, and so are x32 calls on
 *    x86-64 (numbers with `__X32_SYSCALL_BIT`, which share the x86-64 arch
 *    value). aarch64 has no such second ABI: every number past the table
 *    gets the default action.
 * 2. The system call number is found by a binary search over ranges of
 *    numbers with the same outcome (about nine comparisons for any call),
 *    instead of one comparison per rule.
 * 3. A call named by a rule without conditions gets that rule's action (the
 *    first such rule; libseccomp, which runc and crun use, lets it override
 *    the call's conditional rules, and the same config.json must act the
 *    same). Otherwise its argument rules run in order, each argument
 *    compared as two 32-bit halves (BPF's accumulator is 32 bits wide): the
 *    first rule whose conditions all hold decides, else the default action.
 *
 * Conditional jumps reach 255 instructions; a longer jump goes through a
 * `ja` (32-bit offset). A program beyond the kernel's 4096 instructions is
 * an error.
 */
import { SYSCALL_TABLE_AARCH64 } from "../../ffi/syscall_table_aarch64.ts";
import { SYSCALL_TABLE_X86_64 } from "../../ffi/syscall_table_x86_64.ts";
import {
  AUDIT_ARCH,
  BPF,
  encodeSockFilters,
  SECCOMP,
  SECCOMP_DATA,
  SECCOMP_RET,
  type SockFilter,
  X32_SYSCALL_BIT,
} from "../../ffi/syscalls.ts";
import type { SeccompAction, SeccompArg } from "../spec/types.ts";
import type { SeccompPlan, SeccompRulePlan } from "./seccomp_config.ts";

/** An architecture trun compiles filters for. */
export interface SeccompArch {
  /** libseccomp's name of it (SCMP_ARCH_*). */
  name: string;
  /** The `seccomp_data.arch` of its native system calls (AUDIT_ARCH_*). */
  audit: number;
  /** Its system call numbers by name. */
  table: Readonly<Record<string, number>>;
  /**
   * Numbers from this one up belong to another ABI with the same arch value
   * (x32 on x86-64); the filter kills them.
   */
  foreignFrom?: number;
}

/** The architectures trun compiles filters for, by `Deno.build.arch`. */
export const SECCOMP_ARCHES = {
  "x86_64": {
    name: "SCMP_ARCH_X86_64",
    audit: AUDIT_ARCH.X86_64,
    table: SYSCALL_TABLE_X86_64,
    foreignFrom: X32_SYSCALL_BIT,
  },
  aarch64: { name: "SCMP_ARCH_AARCH64", audit: AUDIT_ARCH.AARCH64, table: SYSCALL_TABLE_AARCH64 },
} as const satisfies Record<string, SeccompArch>;

/** The architecture of the machine (`Deno.build.arch`): aarch64 there, else x86-64. */
export function nativeSeccompArch(denoArch: string = Deno.build.arch): SeccompArch {
  return denoArch === "aarch64" ? SECCOMP_ARCHES.aarch64 : SECCOMP_ARCHES.x86_64;
}

/** The value a filter returns for an action and its errno (or trace data). */
export function actionReturn(action: SeccompAction, errno: number): number {
  const data = errno & SECCOMP_RET.DATA;
  switch (action) {
    case "SCMP_ACT_ALLOW":
      return SECCOMP_RET.ALLOW;
    case "SCMP_ACT_ERRNO":
      return (SECCOMP_RET.ERRNO | data) >>> 0;
    case "SCMP_ACT_TRACE":
      return (SECCOMP_RET.TRACE | data) >>> 0;
    case "SCMP_ACT_TRAP":
      return SECCOMP_RET.TRAP;
    case "SCMP_ACT_LOG":
      return SECCOMP_RET.LOG;
    case "SCMP_ACT_KILL_PROCESS":
      return SECCOMP_RET.KILL_PROCESS;
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return SECCOMP_RET.KILL_THREAD;
    case "SCMP_ACT_NOTIFY":
      throw new Error("SCMP_ACT_NOTIFY needs a seccomp listener, which trun does not offer");
  }
}

/** The seccomp(2) flag word of the plan's flag names. */
export function seccompFlags(plan: SeccompPlan): number {
  const bits: Record<string, number> = {
    SECCOMP_FILTER_FLAG_TSYNC: SECCOMP.FILTER_FLAG_TSYNC,
    SECCOMP_FILTER_FLAG_LOG: SECCOMP.FILTER_FLAG_LOG,
    SECCOMP_FILTER_FLAG_SPEC_ALLOW: SECCOMP.FILTER_FLAG_SPEC_ALLOW,
  };
  return plan.flags.reduce((f, name) => f | (bits[name] ?? 0), 0);
}

const ins = (code: number, k: number, jt = 0, jf = 0): SockFilter => ({ code, jt, jf, k: k >>> 0 });
const ret = (k: number) => ins(BPF.RET_K, k);

/** What one system call number leads to: a return value, or rules to run on its arguments. */
type Outcome = { ret: number } | { rules: SeccompRulePlan[]; fallback: number };

/** A range of numbers with one outcome. */
interface Segment {
  lo: number;
  hi: number;
  outcome: Outcome;
}

/** Loads the low or high half of argument `index` into A. */
function loadArg(index: number, high: boolean): SockFilter {
  return ins(BPF.LD_W_ABS, SECCOMP_DATA.ARGS + 8 * index + (high ? 4 : 0));
}

function halves(v: number): [number, number] {
  const b = BigInt(v);
  return [Number(b >> 32n), Number(b & 0xffff_ffffn)];
}

function jump(offset: number): number {
  if (offset > BPF.MAX_JUMP) throw new Error(`seccomp rule too long: a jump of ${offset}`);
  return offset;
}

/**
 * One condition: falls through when it holds, jumps `after` instructions
 * past its own end when it does not (to the next rule).
 */
function condition(a: Required<SeccompArg>, after: number): SockFilter[] {
  const [vhi, vlo] = halves(a.value);
  const hi = loadArg(a.index, true);
  const lo = loadArg(a.index, false);
  // Offsets count from the next instruction; `fail(i, n)` leaves a fragment of n at index i.
  const fail = (i: number, n: number) => jump(n - 1 - i + after);
  switch (a.op) {
    case "SCMP_CMP_EQ":
      return [hi, ins(BPF.JEQ_K, vhi, 0, fail(1, 4)), lo, ins(BPF.JEQ_K, vlo, 0, fail(3, 4))];
    case "SCMP_CMP_NE":
      return [hi, ins(BPF.JEQ_K, vhi, 0, 2), lo, ins(BPF.JEQ_K, vlo, fail(3, 4), 0)];
    case "SCMP_CMP_MASKED_EQ": {
      const [dhi, dlo] = halves(a.valueTwo);
      return [
        hi,
        ins(BPF.ALU_AND_K, vhi),
        ins(BPF.JEQ_K, dhi, 0, fail(2, 6)),
        lo,
        ins(BPF.ALU_AND_K, vlo),
        ins(BPF.JEQ_K, dlo, 0, fail(5, 6)),
      ];
    }
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE": {
      // hi > vhi: holds; hi < vhi: fails; equal: compare the low halves.
      const low = a.op === "SCMP_CMP_GT" ? BPF.JGT_K : BPF.JGE_K;
      return [
        hi,
        ins(BPF.JGT_K, vhi, 3, 0),
        ins(BPF.JEQ_K, vhi, 0, fail(2, 5)),
        lo,
        ins(low, vlo, 0, fail(4, 5)),
      ];
    }
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE": {
      // hi > vhi: fails; hi < vhi: holds; equal: compare the low halves.
      const low = a.op === "SCMP_CMP_LT" ? BPF.JGE_K : BPF.JGT_K;
      return [
        hi,
        ins(BPF.JGT_K, vhi, fail(1, 5), 0),
        ins(BPF.JEQ_K, vhi, 0, 2),
        lo,
        ins(low, vlo, fail(4, 5), 0),
      ];
    }
  }
}

/** The code of a call with argument rules: each rule's conditions, then its return; the fallback last. */
function ruleBlock(rules: SeccompRulePlan[], fallback: number): SockFilter[] {
  const code: SockFilter[] = [];
  for (const rule of rules) {
    let block: SockFilter[] = [ret(actionReturn(rule.action, rule.errno))];
    for (const a of [...rule.args].reverse()) block = [...condition(a, block.length), ...block];
    code.push(...block);
  }
  code.push(ret(fallback));
  return code;
}

/**
 * The outcome of one system call: a rule without conditions decides alone
 * (libseccomp, which runc and crun use, lets it override conditional rules
 * of the call); else its conditional rules in order, then the default.
 */
function outcomeOf(rules: SeccompRulePlan[], defaultRet: number): Outcome {
  const always = rules.find((r) => r.args.length === 0);
  if (always) return { ret: actionReturn(always.action, always.errno) };
  return rules.length ? { rules, fallback: defaultRet } : { ret: defaultRet };
}

/** The code of one segment: a return, or its argument rules. */
function leaf(seg: Segment): SockFilter[] {
  const o = seg.outcome;
  return "ret" in o ? [ret(o.ret)] : ruleBlock(o.rules, o.fallback);
}

/**
 * Binary search over `segs[lo, hi)` (sorted, contiguous) on the number in
 * A, appended to `out`; `leaves` holds each segment's code.
 */
function search(
  segs: Segment[],
  leaves: SockFilter[][],
  lo: number,
  hi: number,
  out: SockFilter[],
): void {
  if (hi - lo === 1) {
    out.push(...leaves[lo]!);
    return;
  }
  const mid = (lo + hi) >> 1;
  const left: SockFilter[] = [];
  search(segs, leaves, lo, mid, left);
  const pivot = segs[mid]!.lo;
  if (left.length <= BPF.MAX_JUMP) out.push(ins(BPF.JGE_K, pivot, left.length, 0));
  // Too far for an 8-bit offset: jump over the left half with `ja`.
  else out.push(ins(BPF.JGE_K, pivot, 0, 1), ins(BPF.JA, left.length));
  for (const i of left) out.push(i);
  search(segs, leaves, mid, hi, out);
}

/**
 * Compiles a plan for `arch` (the machine's by default); names its table
 * lacks are skipped, as libseccomp skips calls an architecture does not
 * have (`open` or `fork` on aarch64).
 */
export function compileSeccomp(
  plan: SeccompPlan,
  arch: SeccompArch = nativeSeccompArch(),
): SockFilter[] {
  const table = arch.table;
  const defaultRet = actionReturn(plan.defaultAction, plan.defaultErrno);
  const byNumber = new Map<number, SeccompRulePlan[]>();
  for (const rule of plan.rules) {
    for (const name of rule.names) {
      const nr = table[name];
      if (nr === undefined) continue;
      const rules = byNumber.get(nr) ?? [];
      if (!rules.includes(rule)) rules.push(rule);
      byNumber.set(nr, rules);
    }
  }
  const maxNr = Math.max(0, ...Object.values(table));
  const segs: Segment[] = [];
  const sameRet = (a: Outcome, b: Outcome) => "ret" in a && "ret" in b && a.ret === b.ret;
  const add = (lo: number, hi: number, outcome: Outcome) => {
    const last = segs[segs.length - 1];
    if (last && last.hi === lo - 1 && sameRet(last.outcome, outcome)) last.hi = hi;
    else segs.push({ lo, hi, outcome });
  };
  for (let nr = 0; nr <= maxNr; nr++) add(nr, nr, outcomeOf(byNumber.get(nr) ?? [], defaultRet));
  const foreign = arch.foreignFrom ?? 0x1_0000_0000;
  add(maxNr + 1, foreign - 1, { ret: defaultRet });
  if (foreign <= 0xffffffff) add(foreign, 0xffffffff, { ret: SECCOMP_RET.KILL_PROCESS });

  const program = [
    ins(BPF.LD_W_ABS, SECCOMP_DATA.ARCH),
    ins(BPF.JEQ_K, arch.audit, 1, 0),
    ret(SECCOMP_RET.KILL_PROCESS),
    ins(BPF.LD_W_ABS, SECCOMP_DATA.NR),
  ];
  search(segs, segs.map(leaf), 0, segs.length, program);
  if (program.length > BPF.MAX_INSNS) {
    throw new Error(
      `the seccomp filter needs ${program.length} instructions; the kernel takes at most ${BPF.MAX_INSNS}`,
    );
  }
  return program;
}

/** The plan compiled for the machine and encoded as the kernel reads it (struct sock_filter[]). */
export function compiledSeccomp(
  plan: SeccompPlan,
  arch: SeccompArch = nativeSeccompArch(),
): Uint8Array<ArrayBuffer> {
  return encodeSockFilters(compileSeccomp(plan, arch));
}
