/**
 * Checks `linux.seccomp` of a config.json field by field
 * (config-linux.md "Seccomp") and decides the filter the engine compiles:
 * every action but SCMP_ACT_NOTIFY (trun has no listener), the errno of
 * SCMP_ACT_ERRNO (EPERM unless `errnoRet` says otherwise), argument rules
 * with all seven operators, and the filter flags the kernel applies at
 * install time.
 */
import { Errno } from "../../ffi/errno.ts";
import { SpecError } from "./config.ts";
import {
  SECCOMP_ACTIONS,
  SECCOMP_OPERATORS,
  type SeccompAction,
  type SeccompArg,
  type SeccompOperator,
} from "../spec/types.ts";

/** One rule, checked: all `args` must hold for `action`; `errno` is its return data. */
export interface SeccompRulePlan {
  /** System call names (names this architecture lacks are ignored, as libseccomp does). */
  names: string[];
  /** The action (SCMP_ACT_KILL is spelled SCMP_ACT_KILL_THREAD). */
  action: SeccompAction;
  /** errnoRet, or EPERM (the errno of SCMP_ACT_ERRNO, the data of SCMP_ACT_TRACE). */
  errno: number;
  /** Argument conditions, with valueTwo filled in. */
  args: Required<SeccompArg>[];
}

/** A checked `linux.seccomp`. */
export interface SeccompPlan {
  /** The action when no rule names the system call. */
  defaultAction: SeccompAction;
  /** Its errno (defaultErrnoRet, or EPERM). */
  defaultErrno: number;
  /** The SCMP_ARCH_* names listed (the native one is always accepted). */
  architectures: string[];
  /** SECCOMP_FILTER_FLAG_* names. */
  flags: string[];
  /** The rules in order (see seccomp_bpf.ts for which one decides). */
  rules: SeccompRulePlan[];
}

/** The actions trun compiles (SCMP_ACT_NOTIFY needs a listener, which trun does not have). */
const ACTIONS = new Set<string>(SECCOMP_ACTIONS.filter((a) => a !== "SCMP_ACT_NOTIFY"));

const OPERATORS = new Set<string>(SECCOMP_OPERATORS);

/** The architectures libseccomp names; trun's filter compiles the machine's own (x86-64 or aarch64). */
const ARCHITECTURES = new Set<string>([
  "SCMP_ARCH_X86",
  "SCMP_ARCH_X86_64",
  "SCMP_ARCH_X32",
  "SCMP_ARCH_ARM",
  "SCMP_ARCH_AARCH64",
  "SCMP_ARCH_MIPS",
  "SCMP_ARCH_MIPS64",
  "SCMP_ARCH_MIPS64N32",
  "SCMP_ARCH_MIPSEL",
  "SCMP_ARCH_MIPSEL64",
  "SCMP_ARCH_MIPSEL64N32",
  "SCMP_ARCH_PPC",
  "SCMP_ARCH_PPC64",
  "SCMP_ARCH_PPC64LE",
  "SCMP_ARCH_S390",
  "SCMP_ARCH_S390X",
  "SCMP_ARCH_PARISC",
  "SCMP_ARCH_PARISC64",
  "SCMP_ARCH_RISCV64",
  "SCMP_ARCH_LOONGARCH64",
]);

/** The filter flags trun passes to seccomp(2). */
export const SECCOMP_FLAGS = [
  "SECCOMP_FILTER_FLAG_TSYNC",
  "SECCOMP_FILTER_FLAG_LOG",
  "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
] as const;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function onlyKnown(obj: Json, known: readonly string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) {
      throw new SpecError(`${where}.${k}`, "is not a seccomp field trun knows");
    }
  }
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpecError(field, "must be an array");
  return v;
}

function strings(v: unknown, field: string): string[] {
  return list(v, field).map((s, i) => {
    if (typeof s !== "string") throw new SpecError(`${field}[${i}]`, "must be a string");
    return s;
  });
}

function integer(v: unknown, field: string, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new SpecError(field, `must be an integer from 0 to ${max}, not ${JSON.stringify(v)}`);
  }
  return v;
}

/** The errno data of an action: 16 bits (SECCOMP_RET_DATA). */
const MAX_ERRNO = 0xffff;

function action(v: unknown, field: string): SeccompAction {
  if (v === "SCMP_ACT_NOTIFY") {
    throw new SpecError(
      field,
      "SCMP_ACT_NOTIFY needs a seccomp notification listener, which trun does not offer",
    );
  }
  if (typeof v !== "string" || !ACTIONS.has(v)) {
    throw new SpecError(
      field,
      `unknown action ${JSON.stringify(v)} (one of ${[...ACTIONS].join(", ")})`,
    );
  }
  return (v === "SCMP_ACT_KILL" ? "SCMP_ACT_KILL_THREAD" : v) as SeccompAction;
}

function arg(v: unknown, field: string): Required<SeccompArg> {
  if (!isObject(v)) throw new SpecError(field, "must be an object");
  onlyKnown(v, ["index", "value", "valueTwo", "op"], field);
  if (typeof v.op !== "string" || !OPERATORS.has(v.op)) {
    throw new SpecError(
      `${field}.op`,
      `unknown operator ${JSON.stringify(v.op)} (one of ${[...OPERATORS].join(", ")})`,
    );
  }
  return {
    index: integer(v.index, `${field}.index`, 5),
    value: integer(v.value ?? 0, `${field}.value`, Number.MAX_SAFE_INTEGER),
    valueTwo: integer(v.valueTwo ?? 0, `${field}.valueTwo`, Number.MAX_SAFE_INTEGER),
    op: v.op as SeccompOperator,
  };
}

/** Checks `linux.seccomp`; a SpecError names the first wrong field. */
export function seccompPlan(v: unknown, field = "linux.seccomp"): SeccompPlan {
  if (!isObject(v)) throw new SpecError(field, "must be an object");
  onlyKnown(v, [
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
  ], field);
  for (const key of ["listenerPath", "listenerMetadata"]) {
    if (v[key] !== undefined && v[key] !== "") {
      throw new SpecError(
        `${field}.${key}`,
        "trun has no seccomp notification listener; remove it",
      );
    }
  }
  const architectures = strings(v.architectures, `${field}.architectures`);
  architectures.forEach((a, i) => {
    if (!ARCHITECTURES.has(a)) {
      throw new SpecError(`${field}.architectures[${i}]`, `unknown architecture "${a}"`);
    }
  });
  const flags = strings(v.flags, `${field}.flags`);
  flags.forEach((f, i) => {
    if (!(SECCOMP_FLAGS as readonly string[]).includes(f)) {
      throw new SpecError(
        `${field}.flags[${i}]`,
        `trun does not support the filter flag "${f}" (it supports ${SECCOMP_FLAGS.join(", ")})`,
      );
    }
  });
  const rules = list(v.syscalls, `${field}.syscalls`).map((s, i): SeccompRulePlan => {
    const f = `${field}.syscalls[${i}]`;
    if (!isObject(s)) throw new SpecError(f, "must be an object");
    onlyKnown(s, ["names", "action", "errnoRet", "args"], f);
    const names = strings(s.names, `${f}.names`);
    if (names.length === 0) throw new SpecError(`${f}.names`, "names no system call");
    return {
      names,
      action: action(s.action, `${f}.action`),
      errno: s.errnoRet === undefined
        ? Errno.EPERM
        : integer(s.errnoRet, `${f}.errnoRet`, MAX_ERRNO),
      args: list(s.args, `${f}.args`).map((a, k) => arg(a, `${f}.args[${k}]`)),
    };
  });
  return {
    defaultAction: action(v.defaultAction, `${field}.defaultAction`),
    defaultErrno: v.defaultErrnoRet === undefined
      ? Errno.EPERM
      : integer(v.defaultErrnoRet, `${field}.defaultErrnoRet`, MAX_ERRNO),
    architectures,
    flags,
    rules,
  };
}
