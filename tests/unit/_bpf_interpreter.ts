/**
 * A classic-BPF interpreter for seccomp filters, written for the tests: it
 * runs a compiled program over a `seccomp_data` the way the kernel does
 * (32-bit accumulator, unsigned comparisons, forward jumps only) and checks
 * what the kernel's verifier checks (jumps inside the program, every path
 * ending in a return, at most 4096 instructions).
 */
import { BPF, SECCOMP_DATA, type SockFilter } from "../../ffi/syscalls.ts";

/** The input of one filter run: struct seccomp_data. */
export interface SeccompData {
  /** System call number. */
  nr: number;
  /** AUDIT_ARCH_* value. */
  arch: number;
  /** Up to six 64-bit arguments (missing ones are 0). */
  args?: bigint[];
}

/** The 32-bit word of seccomp_data at byte offset `k`. */
function word(d: SeccompData, k: number): number {
  if (k === SECCOMP_DATA.NR) return d.nr >>> 0;
  if (k === SECCOMP_DATA.ARCH) return d.arch >>> 0;
  const rel = k - SECCOMP_DATA.ARGS;
  if (rel < 0 || rel >= 48 || rel % 4 !== 0) throw new Error(`load of offset ${k}`);
  const v = BigInt.asUintN(64, d.args?.[rel >> 3] ?? 0n);
  return Number(rel % 8 === 0 ? v & 0xffff_ffffn : v >> 32n);
}

/** Runs the program; returns the filter's 32-bit result and how many instructions ran. */
export function runFilter(
  program: readonly SockFilter[],
  d: SeccompData,
): { ret: number; steps: number } {
  if (program.length === 0 || program.length > BPF.MAX_INSNS) {
    throw new Error(`program of ${program.length} instructions`);
  }
  let a = 0;
  let pc = 0;
  let steps = 0;
  for (;;) {
    const i = program[pc];
    if (!i) throw new Error(`pc ${pc} fell off the program`);
    steps++;
    const next = (off: number) => {
      const to = pc + 1 + off;
      if (to >= program.length) throw new Error(`jump from ${pc} past the end`);
      pc = to;
    };
    switch (i.code) {
      case BPF.LD_W_ABS:
        a = word(d, i.k);
        pc++;
        break;
      case BPF.ALU_AND_K:
        a = (a & i.k) >>> 0;
        pc++;
        break;
      case BPF.JA:
        next(i.k);
        break;
      case BPF.JEQ_K:
        next(a === i.k ? i.jt : i.jf);
        break;
      case BPF.JGT_K:
        next(a > i.k ? i.jt : i.jf);
        break;
      case BPF.JGE_K:
        next(a >= i.k ? i.jt : i.jf);
        break;
      case BPF.JSET_K:
        next((a & i.k) !== 0 ? i.jt : i.jf);
        break;
      case BPF.RET_K:
        return { ret: i.k >>> 0, steps };
      default:
        throw new Error(`unknown opcode 0x${i.code.toString(16)} at ${pc}`);
    }
  }
}
