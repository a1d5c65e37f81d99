/**
 * `trun login` and `trun logout`, with Docker's flags and messages. The
 * credentials are checked against the registry before they are saved in
 * trun's `auth.json` (lib/image/auth.ts); a registry that asks for no
 * authentication accepts any login, as with Docker ("Login Succeeded").
 * Without `-u`/`-p`, the user name and password are asked for on the
 * terminal (the password without echo); scripts use `--password-stdin`.
 */
import { defineCommand, parseArgs, UsageError } from "./args.ts";
import { printHelp, println, warn } from "./output.ts";
import {
  credentialsFromAuths,
  dockerConfigKey,
  dockerConfigPath,
  login,
  logout,
  normalizeAuthKey,
  readAuthFile,
  trunAuthPath,
} from "../image/auth.ts";
import { DEFAULT_REGISTRY } from "../oci/reference.ts";

/** The grammar of `trun login`. */
export const LOGIN = defineCommand({
  name: "login",
  usage: "[OPTIONS] [SERVER]",
  summary: "Log in to a registry (Docker Hub when no server is given)",
  maxArgs: 1,
  flags: {
    username: { short: "u", kind: "string", value: "USER", help: "Username" },
    password: { short: "p", kind: "string", value: "PASS", help: "Password" },
    "password-stdin": { kind: "bool", help: "Take the password from stdin" },
  },
});

/** The grammar of `trun logout`. */
export const LOGOUT = defineCommand({
  name: "logout",
  usage: "[SERVER]",
  summary: "Log out from a registry (Docker Hub when no server is given)",
  maxArgs: 1,
  flags: {},
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function write(text: string): void {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/** All of stdin, without one trailing newline (`--password-stdin`, as Docker trims it). */
async function readStdin(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\n$/, "").replace(/\r$/, "");
}

/** Asks a question on the terminal and reads the answer line. */
async function prompt(question: string): Promise<string> {
  write(question);
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  while (true) {
    const n = await Deno.stdin.read(buf);
    if (n === null || buf[0] === 0x0a) break;
    bytes.push(buf[0]!);
  }
  return decoder.decode(new Uint8Array(bytes)).replace(/\r$/, "");
}

/**
 * Reads a password on the terminal without echoing it: raw mode, Enter
 * ends, Backspace erases, Ctrl-C and Ctrl-D give up.
 */
async function promptSecret(question: string): Promise<string> {
  write(question);
  const buf = new Uint8Array(1);
  const bytes: number[] = [];
  Deno.stdin.setRaw(true);
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
      const b = buf[0]!;
      if (n === null || b === 0x04) {
        if (bytes.length === 0) throw new Error("Login cancelled: no password given");
        break;
      }
      if (b === 0x03) throw new Error("Login cancelled");
      if (b === 0x0d || b === 0x0a) break;
      if (b === 0x7f || b === 0x08) bytes.pop();
      else bytes.push(b);
    }
  } finally {
    Deno.stdin.setRaw(false);
    write("\n");
  }
  return decoder.decode(new Uint8Array(bytes));
}

/** Runs `trun login [-u USER] [-p PASS | --password-stdin] [SERVER]`. */
export async function loginCommand(argv: string[]): Promise<number> {
  const p = parseArgs(LOGIN, argv);
  if (p.help) return printHelp(LOGIN);
  const server = normalizeAuthKey(p.args[0] ?? DEFAULT_REGISTRY);
  let username = p.flags.username;
  let password = p.flags.password;
  const fromStdin = p.flags["password-stdin"];
  if (password !== undefined && fromStdin) {
    throw new UsageError(LOGIN, "--password and --password-stdin are mutually exclusive");
  }
  if (fromStdin) {
    if (username === undefined) {
      throw new UsageError(LOGIN, "--password-stdin needs --username (-u)");
    }
    password = await readStdin();
  } else if (password !== undefined) {
    warn("Using --password on the command line is insecure: use --password-stdin");
  }
  if (username === undefined || password === undefined) {
    if (!Deno.stdin.isTerminal()) {
      throw new Error(
        "Cannot ask for the user name and password: stdin is not a terminal; use --username and --password-stdin",
      );
    }
    username ??= (await prompt("Username: ")).trim();
    password ??= await promptSecret("Password: ");
  }
  await login(server, username, password);
  warn(
    `Your password is stored unencrypted in "${trunAuthPath()}" (readable only by you)`,
  );
  println("Login Succeeded");
  return 0;
}

/** Runs `trun logout [SERVER]`. */
export async function logoutCommand(argv: string[]): Promise<number> {
  const p = parseArgs(LOGOUT, argv);
  if (p.help) return printHelp(LOGOUT);
  const server = normalizeAuthKey(p.args[0] ?? DEFAULT_REGISTRY);
  const shown = dockerConfigKey(server);
  if (await logout(server)) {
    println(`Removing login credentials for ${shown}`);
  } else {
    println(`Not logged in to ${shown}`);
  }
  // trun never edits Docker's file; a login found there still works.
  const docker = dockerConfigPath();
  const file = await readAuthFile(docker).catch(() => ({}));
  if (credentialsFromAuths(file, server) !== undefined) {
    warn(
      `Docker's "${docker}" still holds credentials for ${shown}, which trun also uses: run "docker logout ${shown}" to remove them`,
    );
  }
  return 0;
}
