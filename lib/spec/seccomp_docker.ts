/**
 * Reads a seccomp profile in Docker's JSON format (`--security-opt
 * seccomp=PROFILE.json`): defaultAction, defaultErrnoRet, architectures or
 * archMap, flags, and syscalls with names (or the older name), action,
 * errnoRet, args, includes and excludes. As Docker, unknown keys (comments,
 * Podman's `errno` names) are ignored; a wrong type or value is an error
 * naming the file and the field.
 */
import {
  SECCOMP_ACTIONS,
  SECCOMP_OPERATORS,
  type SeccompAction,
  type SeccompArg,
  type SeccompOperator,
} from "./types.ts";
import type { ProfileRule, RuleFilter, SeccompProfile } from "./seccomp_profile.ts";

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses a Docker seccomp profile; `path` names the file in errors.
 * Throws an Error saying which field is wrong.
 */
export function parseDockerSeccompProfile(text: string, path: string): SeccompProfile {
  const fail = (field: string, msg: string): never => {
    throw new Error(`seccomp profile "${path}": ${field}: ${msg}`);
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`seccomp profile "${path}" is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) return fail("(document)", "must be a JSON object");
  const strings = (v: unknown, field: string): string[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
      return fail(field, "must be a list of strings");
    }
    return v as string[];
  };
  const u32 = (v: unknown, field: string): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      return fail(field, `must be a non-negative integer, not ${JSON.stringify(v)}`);
    }
    return v;
  };
  const u64 = (v: unknown, field: string): number => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      return fail(field, `must be a non-negative integer below 2^53, not ${JSON.stringify(v)}`);
    }
    return v;
  };
  const action = (v: unknown, field: string): SeccompAction => {
    if (!SECCOMP_ACTIONS.includes(v as SeccompAction)) {
      return fail(
        field,
        `unknown action ${JSON.stringify(v)} (one of ${SECCOMP_ACTIONS.join(", ")})`,
      );
    }
    return v as SeccompAction;
  };
  const filter = (v: unknown, field: string): RuleFilter | undefined => {
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) return fail(field, "must be an object");
    const out: RuleFilter = {};
    const caps = strings(v.caps, `${field}.caps`);
    const arches = strings(v.arches, `${field}.arches`);
    if (caps.length) out.caps = caps;
    if (arches.length) out.arches = arches;
    if (v.minKernel !== undefined && v.minKernel !== "") {
      if (typeof v.minKernel !== "string" || !/^\d+\.\d+/.test(v.minKernel)) {
        return fail(`${field}.minKernel`, `must be a kernel version such as "4.8"`);
      }
      out.minKernel = v.minKernel;
    }
    return Object.keys(out).length ? out : undefined;
  };

  const defaultAction = action(doc.defaultAction, "defaultAction");
  const profile: SeccompProfile = { defaultAction, archMap: [], rules: [] };
  if (doc.defaultErrnoRet !== undefined && doc.defaultErrnoRet !== null) {
    profile.defaultErrnoRet = u32(doc.defaultErrnoRet, "defaultErrnoRet");
  }
  for (const key of ["listenerPath", "listenerMetadata"]) {
    if (doc[key]) fail(key, "trun has no seccomp notification listener; remove it");
  }
  const flags = strings(doc.flags, "flags");
  if (flags.length) profile.flags = flags;

  const architectures = strings(doc.architectures, "architectures");
  if (architectures.length && doc.archMap) {
    fail("archMap", "'architectures' and 'archMap' were both given; use one of them");
  }
  if (architectures.length) {
    profile.archMap = architectures.map((a) => ({ architecture: a, subArchitectures: [] }));
  } else if (doc.archMap !== undefined && doc.archMap !== null) {
    if (!Array.isArray(doc.archMap)) fail("archMap", "must be a list");
    profile.archMap = (doc.archMap as unknown[]).map((m, i) => {
      const f = `archMap[${i}]`;
      if (!isObject(m) || typeof m.architecture !== "string") {
        return fail(f, "must be an object with an architecture");
      }
      return {
        architecture: m.architecture,
        subArchitectures: strings(m.subArchitectures, `${f}.subArchitectures`),
      };
    });
  }

  const syscalls = doc.syscalls ?? [];
  if (!Array.isArray(syscalls)) fail("syscalls", "must be a list");
  profile.rules = (syscalls as unknown[]).map((s, i): ProfileRule => {
    const f = `syscalls[${i}]`;
    if (!isObject(s)) return fail(f, "must be an object");
    const list = strings(s.names, `${f}.names`);
    if (typeof s.name === "string" && s.name !== "") {
      if (list.length) {
        fail(f, "'name' and 'names' were both given; use 'names'");
      }
      list.push(s.name);
    }
    if (!list.length) fail(`${f}.names`, "names no system call");
    const rule: ProfileRule = {
      names: list,
      action: action(s.action, `${f}.action`),
    };
    if (s.errnoRet !== undefined && s.errnoRet !== null) {
      rule.errnoRet = u32(s.errnoRet, `${f}.errnoRet`);
    }
    if (s.args !== undefined && s.args !== null) {
      if (!Array.isArray(s.args)) fail(`${f}.args`, "must be a list");
      rule.args = (s.args as unknown[]).map((a, k): SeccompArg => {
        const af = `${f}.args[${k}]`;
        if (!isObject(a)) return fail(af, "must be an object");
        const index = u32(a.index, `${af}.index`);
        if (index > 5) fail(`${af}.index`, "must be 0 to 5 (system calls have six arguments)");
        if (!SECCOMP_OPERATORS.includes(a.op as SeccompOperator)) {
          fail(
            `${af}.op`,
            `unknown operator ${JSON.stringify(a.op)} (one of ${SECCOMP_OPERATORS.join(", ")})`,
          );
        }
        return {
          index,
          value: u64(a.value ?? 0, `${af}.value`),
          valueTwo: u64(a.valueTwo ?? 0, `${af}.valueTwo`),
          op: a.op as SeccompOperator,
        };
      });
    }
    const includes = filter(s.includes, `${f}.includes`);
    const excludes = filter(s.excludes, `${f}.excludes`);
    if (includes) rule.includes = includes;
    if (excludes) rule.excludes = excludes;
    return rule;
  });
  return profile;
}
