// Keeps the unsafe part in one place: only ffi/ may open libraries, touch
// pointers or know kernel numbers (syscalls, errno, signals, flags). Code
// elsewhere names them: `Errno.ENOENT`, `SIGNALS.SIGKILL`, `O.CLOEXEC`.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const UNSAFE = /Deno\.(dlopen|UnsafePointer|UnsafePointerView|UnsafeFnPointer|UnsafeCallback)\b/;

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* tsFiles(path);
    else if (e.isFile && e.name.endsWith(".ts")) yield path;
  }
}

/** The TypeScript files under `paths` (folders or files, relative to the repo root). */
async function sources(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths.map((d) => `${ROOT}${d}`)) {
    if (p.endsWith(".ts")) out.push(p);
    else out.push(...await Array.fromAsync(tsFiles(p)));
  }
  return out.sort();
}

/** `file:line: text` for each line of each file that matches one of `rules`. */
async function offenders(files: string[], rules: Record<string, RegExp>): Promise<string[]> {
  const found: string[] = [];
  for (const f of files) {
    const lines = (await Deno.readTextFile(f)).split("\n");
    lines.forEach((line, i) => {
      for (const [why, re] of Object.entries(rules)) {
        if (re.test(line)) found.push(`${f.slice(ROOT.length)}:${i + 1}: ${why}: ${line.trim()}`);
      }
    });
  }
  return found;
}

// A kernel number written as a literal where a name belongs. Each rule is
// one line-level pattern; exit codes (125, 126, 127) and `128 + signal`
// arithmetic are not kernel numbers and do not match.
const NUMBER_LITERALS: Record<string, RegExp> = {
  // `const ENOENT = 2`, `{ EEXIST: 17 }`
  "errno constant defined outside ffi/": /\bE[A-Z][A-Z0-9]*\s*[:=]\s*-?\d/,
  // `const SIGKILL = 9`, `{ SIGTERM: 15 }`
  "signal constant defined outside ffi/": /\bSIG[A-Z][A-Z0-9]*\s*[:=]\s*-?\d/,
  // `errno === 61`, `e.errno !== 2`, `2 === err.errno`, `okErrno: 17`
  "errno compared with a number":
    /errno\s*[!=]==?\s*-?\d|\d\s*[!=]==?\s*[\w.]*errno\b|okErrno:\s*\d/i,
  // `61 /* ENODATA */`, `2, /* SIG_SETMASK */`
  "number annotated with a kernel name":
    /\d\s*,?\s*\/\*\s*(E|SIG|O_|AT_|MS_|CLONE_|PR_)[A-Z0-9_]*\s*\*\//,
  // `signalProcess(pid, 9)`, `kill(pid, 15)`, `process.kill(pid, 9)`
  "signal sent by number": /\b(signalProcess|kill)\([^()]*,\s*-?\d+\s*\)/,
  // `sys("pipe2", [buf, 0o2000000])`, `sys("openat", [-100, …])`
  "raw call with a literal flag word":
    /\bsys(Blocking)?\(\s*"\w+"\s*,\s*\[[^\]]*(\b0x[0-9a-f]+|\b0o[0-7]+|-\d+)/i,
  // `{ call: 5, … }`
  "syscall by number": /\bcall:\s*\d/,
};

Deno.test("only ffi/ uses Deno.dlopen and unsafe pointers", async () => {
  const found: string[] = [];
  for (const f of await sources(["lib", "main.ts"])) {
    if (UNSAFE.test(await Deno.readTextFile(f))) found.push(f.slice(ROOT.length));
  }
  assert.deepEqual(found, []);
});

Deno.test("syscall, errno and signal numbers appear only in ffi/", async () => {
  const files = await sources(["lib", "main.ts", "scripts", "bench"]);
  assert.deepEqual(await offenders(files, NUMBER_LITERALS), []);
});

Deno.test("the boundary rules catch the literals they are for", () => {
  const caught = [
    "const ENOENT = 2, EEXIST = 17, EINVAL = 22;",
    "const SIGKILL = 9, SIGSTOP = 19;",
    "  const errno = { EPERM: 1 };",
    "if (errno === 61 /* ENODATA */ || errno === 95) return null;",
    "if (e.errno !== 2) throw e;",
    "okErrno: 17,",
    "args: [2, /* SIG_SETMASK */ { savedSignalMask: true }, 0, 8],",
    "signalProcess(child.pid, 9);",
    "const forward = () => signalProcess(child.pid, 15);",
    "process.kill(pid, 9)",
    `sys("pipe2", [new Uint8Array(fds.buffer), 0o2000000], "creating a pipe");`,
    `sys("openat", [-100, path, flags], "opening");`,
    `await sysBlocking("wait4", [pid, buf, 0x40000000, 0]);`,
    `{ call: 59, args: [] }`,
  ];
  const passed = [
    "return new ContainerStartError(`exec: ${argv0}: permission denied`, 126);",
    "return st.signal ? 128 + (SIGNALS[st.signal] ?? 0) : st.code;",
    "return s.exited ? s.code : 128 + s.signal;",
    "signalProcess(child.pid, SIGNALS.SIGKILL);",
    "if (errno === Errno.ENOENT || errno === Errno.ENOTDIR) {",
    "const EXIT_USAGE = 2;",
    "const MAX_SYMLINKS = 40;",
    "const DEFAULT_TIMEOUT = 30;",
    `sys("dup2", [fd, 2], "redirecting stderr");`,
    `{ call: "mkdirat", args: [{ ref: parent }, { str: name }, 0o755], okErrno: EEXIST }`,
  ];
  const hits = (line: string) => Object.values(NUMBER_LITERALS).some((re) => re.test(line));
  assert.deepEqual(caught.filter((l) => !hits(l)), [], "lines the rules should catch");
  assert.deepEqual(passed.filter(hits), [], "lines the rules should leave alone");
});

Deno.test("ffi/ defines each kernel constant once, in syscalls.ts or errno.ts", async () => {
  const homes = new Set(["ffi/syscalls.ts", "ffi/errno.ts"]);
  const files = (await sources(["ffi"])).filter((f) => !homes.has(f.slice(ROOT.length)));
  // A `const NAME = <number>` elsewhere in ffi/ is a second copy;
  // only the clone stub's own protocol (op layout, stack, fork record) may
  // stay beside the code using it.
  const stubLayout = /^(export )?const (OP_SIZE|CHILD_STACK|FORK_RECORD_MARK) = /;
  const found = (await offenders(files, { "constant": /\bconst [A-Z][A-Z0-9_]* = -?\d/ }))
    .filter((l) => !stubLayout.test(l.split(": constant: ")[1] ?? ""));
  assert.deepEqual(found, []);
});
