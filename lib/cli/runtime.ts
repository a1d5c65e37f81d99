/**
 * `trun runtime VERB …`: runc's command line over trun's engine, so that
 * Podman (`podman --runtime`), conmon and other engines can drive trun as
 * they drive runc. The same entry point serves an executable named
 * `trun-runc` (see README). Global flags come before the verb, as runc's:
 * `--root`, `--log`, `--log-format`, `--debug`, `--systemd-cgroup`,
 * `--rootless`.
 */
import { trace } from "../util/trace.ts";
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println } from "./output.ts";
import { versionInfo } from "../version.ts";
import { inInitialUserNamespace } from "../runtime/idmap.ts";

/** The flags `create` and `run` share: where the bundle is and what to hand back. */
const BUNDLE_FLAGS = {
  bundle: { short: "b", kind: "string", value: "DIR", help: "Bundle directory (default: .)" },
  "pid-file": { kind: "string", value: "FILE", help: "Write the container's pid here" },
  "console-socket": {
    kind: "string",
    value: "PATH",
    help: "Unix socket that receives the terminal's master",
  },
  "no-pivot": { kind: "bool", help: "Refused: trun always uses pivot_root" },
  "no-new-keyring": { kind: "bool", help: "Keep the caller's session keyring" },
} as const;

/** runc's verbs, with their flags. */
const VERBS = {
  create: defineCommand({
    name: "runtime create",
    usage: "[OPTIONS] CONTAINER-ID",
    summary: "Create a container from a bundle; its process waits for start",
    minArgs: 1,
    maxArgs: 1,
    flags: BUNDLE_FLAGS,
  }),
  run: defineCommand({
    name: "runtime run",
    usage: "[OPTIONS] CONTAINER-ID",
    summary: "Create and start a container, and wait for it unless detached",
    minArgs: 1,
    maxArgs: 1,
    flags: {
      ...BUNDLE_FLAGS,
      detach: { short: "d", kind: "bool", help: "Return once the container is started" },
    },
  }),
  start: defineCommand({
    name: "runtime start",
    usage: "CONTAINER-ID",
    summary: "Start a created container",
    minArgs: 1,
    maxArgs: 1,
    flags: {},
  }),
  state: defineCommand({
    name: "runtime state",
    usage: "CONTAINER-ID",
    summary: "Print a container's state as JSON",
    minArgs: 1,
    maxArgs: 1,
    flags: {},
  }),
  kill: defineCommand({
    name: "runtime kill",
    usage: "[OPTIONS] CONTAINER-ID [SIGNAL]",
    summary: "Send a signal (default SIGTERM) to a container",
    minArgs: 1,
    maxArgs: 2,
    flags: { all: { short: "a", kind: "bool", help: "Signal every process of the container" } },
  }),
  pause: defineCommand({
    name: "runtime pause",
    usage: "CONTAINER-ID",
    summary: "Suspend every process of a container (freezes its cgroup)",
    minArgs: 1,
    maxArgs: 1,
    flags: {},
  }),
  resume: defineCommand({
    name: "runtime resume",
    usage: "CONTAINER-ID",
    summary: "Resume every process of a paused container",
    minArgs: 1,
    maxArgs: 1,
    flags: {},
  }),
  delete: defineCommand({
    name: "runtime delete",
    usage: "[OPTIONS] CONTAINER-ID",
    summary: "Delete a stopped container",
    minArgs: 1,
    maxArgs: 1,
    flags: { force: { short: "f", kind: "bool", help: "Kill it first if it runs" } },
  }),
  exec: defineCommand({
    name: "runtime exec",
    usage: "[OPTIONS] CONTAINER-ID [COMMAND [ARG...]]",
    summary: "Run a process in a running container",
    minArgs: 1,
    interspersed: false,
    flags: {
      process: { short: "p", kind: "string", value: "FILE", help: "process.json to run" },
      tty: { short: "t", kind: "bool", help: "Allocate a terminal" },
      "console-socket": { kind: "string", value: "PATH", help: "Console socket" },
      detach: { short: "d", kind: "bool", help: "Return once the process runs" },
      "pid-file": { kind: "string", value: "FILE", help: "Write the process's pid here" },
      cwd: { kind: "string", value: "DIR", help: "Working directory" },
      env: { short: "e", kind: "list", value: "NAME=VALUE", help: "Set an environment variable" },
      user: { short: "u", kind: "string", value: "UID[:GID]", help: "User to run as" },
      "additional-gids": { short: "g", kind: "list", value: "GID", help: "Supplementary group" },
      cap: { short: "c", kind: "list", value: "CAP", help: "Add a capability" },
      "no-new-privs": { kind: "bool", help: "Set no_new_privs" },
    },
  }),
  ps: defineCommand({
    name: "runtime ps",
    usage: "[OPTIONS] CONTAINER-ID",
    summary: "List the processes of a container",
    minArgs: 1,
    maxArgs: 1,
    flags: { format: { short: "f", kind: "string", value: "table|json", help: "Output format" } },
  }),
  list: defineCommand({
    name: "runtime list",
    usage: "[OPTIONS]",
    summary: "List containers",
    maxArgs: 0,
    flags: {
      format: { short: "f", kind: "string", value: "table|json", help: "Output format" },
      quiet: { short: "q", kind: "bool", help: "Only ids" },
    },
  }),
  spec: defineCommand({
    name: "runtime spec",
    usage: "[OPTIONS]",
    summary: "Write an example config.json",
    maxArgs: 0,
    flags: {
      bundle: { short: "b", kind: "string", value: "DIR", help: "Bundle directory (default: .)" },
      rootless: { kind: "bool", help: "A spec for a rootless container" },
    },
  }),
  features: defineCommand({
    name: "runtime features",
    usage: "",
    summary: "Print what this runtime implements, as JSON",
    maxArgs: 0,
    flags: {},
  }),
};

type Verb = keyof typeof VERBS;

/** runc's global flags. */
interface Globals {
  root?: string;
  log?: string;
  logFormat: "text" | "json";
  debug: boolean;
}

const GLOBAL_HELP = `Usage:  trun runtime [GLOBAL OPTIONS] COMMAND [OPTIONS] CONTAINER-ID

trun's OCI runtime, with runc's command line (also as the executable trun-runc)

Global options:
      --root DIR            State directory (default: $XDG_RUNTIME_DIR/trun/runtime; root: /run/trun/runtime)
      --log FILE            Also write errors to FILE
      --log-format FORMAT   text or json
      --debug               Verbose errors
      --systemd-cgroup      Refused: trun has no systemd cgroup manager yet
      --rootless VALUE      Accepted for runc compatibility (auto, true, false)

Commands:
${Object.entries(VERBS).map(([n, d]) => `  ${n.padEnd(10)}${d.summary}`).join("\n")}`;

/** Splits runc's global flags from the verb and its arguments. */
function parseGlobals(argv: string[]): { globals: Globals; rest: string[] } {
  const globals: Globals = { logFormat: "text", debug: false };
  let i = 0;
  const value = (flag: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = argv[++i];
    if (v === undefined) throw new Error(`flag needs an argument: ${flag}`);
    return v;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("-")) break;
    const eq = a.indexOf("=");
    const name = eq < 0 ? a : a.slice(0, eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1);
    switch (name) {
      case "--root":
        globals.root = value(name, inline);
        break;
      case "--log":
        globals.log = value(name, inline);
        break;
      case "--log-format": {
        const f = value(name, inline);
        if (f !== "text" && f !== "json") {
          throw new Error(`unknown --log-format "${f}": text or json`);
        }
        globals.logFormat = f;
        break;
      }
      case "--debug":
        globals.debug = true;
        break;
      case "--rootless":
        value(name, inline);
        break;
      case "--systemd-cgroup":
        throw new Error(
          "--systemd-cgroup: trun has no systemd cgroup manager yet; use the cgroupfs manager (Podman: --cgroup-manager=cgroupfs)",
        );
      case "--criu":
        value(name, inline);
        break;
      case "-v":
      case "--version":
      case "-h":
      case "--help":
        return { globals, rest: [name] };
      default:
        throw new Error(`unknown global flag "${a}": see 'trun runtime --help'`);
    }
  }
  return { globals, rest: argv.slice(i) };
}

/**
 * The state root: `--root`, else `/run/trun/runtime` for the real root,
 * else `$XDG_RUNTIME_DIR/trun/runtime` (which Podman always passes), else
 * a private directory in /tmp, as for `trun run`.
 */
function stateRoot(g: Globals): string {
  if (g.root) return g.root;
  const uid = Deno.uid() ?? 0;
  if (uid === 0 && inInitialUserNamespace()) return "/run/trun/runtime";
  const xdg = Deno.env.get("XDG_RUNTIME_DIR");
  if (xdg) return `${xdg}/trun/runtime`;
  const owner = Deno.env.get("_CONTAINERS_ROOTLESS_UID") ?? String(uid);
  return `/tmp/trun-run-${owner}/runtime`;
}

function logError(g: Globals, message: string): void {
  if (!g.log) return;
  const line = g.logFormat === "json"
    ? JSON.stringify({ level: "error", msg: message, time: new Date().toISOString() })
    : `time="${new Date().toISOString()}" level=error msg=${JSON.stringify(message)}`;
  try {
    Deno.writeTextFileSync(g.log, line + "\n", { append: true });
  } catch {
    // The log is a convenience; the error still goes to stderr.
  }
}

function out(text: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(text));
}

/** The process of `exec` given as arguments: the container's process with the flags applied. */
function execProcess(
  root: string,
  id: string,
  args: string[],
  f: ReturnType<typeof parseArgs<typeof VERBS.exec.flags>>["flags"],
): unknown {
  const base = JSON.parse(Deno.readTextFileSync(`${root}/${id}/config.json`)).process ?? {};
  const p: Record<string, unknown> = { ...base, args, terminal: f.tty };
  delete p.consoleSize;
  if (f.cwd) p.cwd = f.cwd;
  if (f.env.length > 0) p.env = [...(base.env ?? []), ...f.env];
  if (f.user) {
    const [u, g] = f.user.split(":");
    p.user = { ...(base.user ?? {}), uid: Number(u), gid: Number(g ?? base.user?.gid ?? 0) };
  }
  if (f["additional-gids"].length > 0) {
    p.user = { ...(p.user as object), additionalGids: f["additional-gids"].map(Number) };
  }
  if (f.cap.length > 0) {
    const caps = base.capabilities ?? {};
    const add = (set: string[] | undefined) => [...new Set([...(set ?? []), ...f.cap])];
    p.capabilities = {
      ...caps,
      bounding: add(caps.bounding),
      effective: add(caps.effective),
      permitted: add(caps.permitted),
    };
  }
  if (f["no-new-privs"]) p.noNewPrivileges = true;
  return p;
}

/** Runs `trun runtime …`; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  let globals: Globals = { logFormat: "text", debug: false };
  try {
    const parsed = parseGlobals(argv);
    globals = parsed.globals;
    const [verbName, ...rest] = parsed.rest;
    if (
      verbName === undefined || verbName === "-h" || verbName === "--help" || verbName === "help"
    ) {
      println(GLOBAL_HELP);
      return 0;
    }
    if (verbName === "-v" || verbName === "--version") {
      const v = versionInfo();
      println(`trun version ${v.version}\nspec: 1.2.0`);
      return 0;
    }
    if (!(verbName in VERBS)) {
      throw new Error(`unknown command "${verbName}": see 'trun runtime --help'`);
    }
    return await runVerb(verbName as Verb, rest, globals);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    logError(globals, message);
    throw e;
  }
}

async function runVerb(verb: Verb, argv: string[], g: Globals): Promise<number> {
  const engine = await import("../engine/runtime.ts");
  const root = stateRoot(g);
  switch (verb) {
    case "create": {
      const p = parseArgs(VERBS.create, argv);
      if (p.help) return printHelp(VERBS.create);
      if (p.flags["no-pivot"]) throw new Error("--no-pivot is not supported: trun always pivots");
      const bundle = p.flags.bundle ?? ".";
      // Started by `run` ahead of its record: wait until the bundle is written.
      // Loaded while the runtime waits at the gate, not after.
      const netModule = import("../container/network_helper.ts");
      const { CREATE_GATE_ENV, waitAtCreateGate } = await import("../container/create_gate.ts");
      const gate = Deno.env.get(CREATE_GATE_ENV);
      trace("runtime create ready");
      if (gate !== undefined) await waitAtCreateGate(gate);
      trace("create gate passed");
      // trun's containers under conmon: their network helper attaches
      // while the process still runs as the container's root (see
      // NETWORK_ANNOTATION).
      const net = await netModule;
      let helper: Awaited<ReturnType<typeof net.startAnnotatedHelper>>;
      try {
        await engine.create(root, p.args[0]!, {
          bundle,
          ...(p.flags["pid-file"] ? { pidFile: p.flags["pid-file"] } : {}),
          ...(p.flags["console-socket"] ? { consoleSocket: p.flags["console-socket"] } : {}),
          ...(p.flags["no-new-keyring"] ? { noNewKeyring: true } : {}),
          beforeMounts: async (pid, annotations) => {
            if (net.NETWORK_ANNOTATION in annotations) {
              trace("network helper starting");
              helper = await net.startAnnotatedHelper(annotations, Deno.realPathSync(bundle), pid);
              trace("network helper ready");
            }
          },
        });
      } catch (e) {
        net.stopNetworkHelper(p.args[0]!, helper);
        throw e;
      }
      return 0;
    }
    case "run": {
      const p = parseArgs(VERBS.run, argv);
      if (p.help) return printHelp(VERBS.run);
      if (p.flags["no-pivot"]) throw new Error("--no-pivot is not supported: trun always pivots");
      return await engine.run(root, p.args[0]!, {
        bundle: p.flags.bundle ?? ".",
        detach: p.flags.detach,
        ...(p.flags["pid-file"] ? { pidFile: p.flags["pid-file"] } : {}),
        ...(p.flags["console-socket"] ? { consoleSocket: p.flags["console-socket"] } : {}),
        ...(p.flags["no-new-keyring"] ? { noNewKeyring: true } : {}),
      });
    }
    case "start": {
      const p = parseArgs(VERBS.start, argv);
      if (p.help) return printHelp(VERBS.start);
      await engine.start(root, p.args[0]!);
      return 0;
    }
    case "state": {
      const p = parseArgs(VERBS.state, argv);
      if (p.help) return printHelp(VERBS.state);
      out(JSON.stringify(engine.containerState(root, p.args[0]!), null, 2));
      return 0;
    }
    case "kill": {
      const p = parseArgs(VERBS.kill, argv);
      if (p.help) return printHelp(VERBS.kill);
      engine.kill(root, p.args[0]!, engine.parseSignal(p.args[1] ?? "SIGTERM"), p.flags.all);
      return 0;
    }
    case "pause":
    case "resume": {
      const p = parseArgs(VERBS[verb], argv);
      if (p.help) return printHelp(VERBS[verb]);
      await engine.setPaused(root, p.args[0]!, verb === "pause");
      return 0;
    }
    case "delete": {
      const p = parseArgs(VERBS.delete, argv);
      if (p.help) return printHelp(VERBS.delete);
      await engine.remove(root, p.args[0]!, p.flags.force);
      return 0;
    }
    case "exec": {
      const p = parseArgs(VERBS.exec, argv);
      if (p.help) return printHelp(VERBS.exec);
      const [id, ...args] = p.args;
      let process: unknown;
      if (p.flags.process) {
        process = JSON.parse(Deno.readTextFileSync(p.flags.process));
      } else {
        if (args.length === 0) {
          throw new UsageError(VERBS.exec, "exec needs a command or --process");
        }
        process = execProcess(root, id!, args, p.flags);
      }
      return await engine.exec(root, id!, {
        process,
        detach: p.flags.detach,
        ...(p.flags["pid-file"] ? { pidFile: p.flags["pid-file"] } : {}),
        ...(p.flags["console-socket"] ? { consoleSocket: p.flags["console-socket"] } : {}),
      });
    }
    case "ps": {
      const p = parseArgs(VERBS.ps, argv);
      if (p.help) return printHelp(VERBS.ps);
      const pids = engine.containerPids(root, p.args[0]!);
      if (p.flags.format === "json") out(JSON.stringify(pids) + "\n");
      else {
        const rows = pids.map((pid) => {
          let cmd = "";
          try {
            cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
          } catch {
            // Gone meanwhile.
          }
          return `${String(pid).padEnd(8)}${cmd}`;
        });
        out(["PID     CMD", ...rows].join("\n") + "\n");
      }
      return 0;
    }
    case "list": {
      const p = parseArgs(VERBS.list, argv);
      if (p.help) return printHelp(VERBS.list);
      const { listIds } = await import("../engine/state.ts");
      const states = listIds(root).flatMap((id) => {
        try {
          return [engine.containerState(root, id)];
        } catch {
          return [];
        }
      });
      if (p.flags.quiet) out(states.map((s) => s.id + "\n").join(""));
      else if (p.flags.format === "json") out(JSON.stringify(states) + "\n");
      else {
        const rows = states.map((s) =>
          [s.id, String(s.pid), s.status, s.bundle, String(s.created)].join("\t")
        );
        out(["ID\tPID\tSTATUS\tBUNDLE\tCREATED", ...rows].join("\n") + "\n");
      }
      return 0;
    }
    case "spec": {
      const p = parseArgs(VERBS.spec, argv);
      if (p.help) return printHelp(VERBS.spec);
      const { specTemplate } = await import("../spec/template.ts");
      const path = `${p.flags.bundle ?? "."}/config.json`;
      const spec = specTemplate({
        rootless: p.flags.rootless,
        uid: Deno.uid() ?? 0,
        gid: Deno.gid() ?? 0,
      });
      try {
        Deno.writeTextFileSync(path, JSON.stringify(spec, null, "\t") + "\n", { createNew: true });
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new Error(`File ${path} exists. Remove it first`);
        }
        throw e;
      }
      return 0;
    }
    case "features": {
      const { featuresDocument } = await import("../engine/features.ts");
      out(JSON.stringify(featuresDocument(), null, 2) + "\n");
      return 0;
    }
  }
}
