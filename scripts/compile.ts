/**
 * Builds the single trun binary: `deno compile` of main.ts into dist/trun
 * with the permissions trun needs and everything embedded (trun reads no
 * file of its source tree at run time; the stub's bytes and defaults are
 * TypeScript data).
 *
 *   deno task compile [--target x86_64-unknown-linux-gnu] [--output dist/trun]
 *
 * `deno compile` needs the `denort` runtime for the target. It downloads it
 * from Deno's servers unless `DENORT_BIN` names a local copy; on a machine
 * without that access, set DENORT_BIN (for example to a denort unpacked from
 * the denort-<target>.zip release asset of the same Deno version).
 */
// deno-lint-ignore-file no-console -- a command-line script: its output is the point.

const args = Deno.args;
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const repo = new URL("..", import.meta.url).pathname;
const output = flag("--output") ?? `${repo}dist/trun`;
const target = flag("--target");

// What trun does at run time: FFI (clone stub, libc), files (store, rootfs),
// subprocesses (newuidmap, credential helpers), the network (registries),
// the environment (XDG dirs) and system info (hostname, uid).
const PERMISSIONS = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-run",
  "--allow-net",
  "--allow-env",
  "--allow-sys",
];

const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    const st = await Deno.stat(denort);
    if (!st.isFile) throw new Error("not a file");
  } catch (e) {
    console.error(
      `compile: DENORT_BIN="${denort}" is not a usable file: ${e instanceof Error ? e.message : e}`,
    );
    Deno.exit(1);
  }
}

await Deno.mkdir(output.slice(0, output.lastIndexOf("/")) || ".", { recursive: true });
const cmd = [
  "compile",
  ...PERMISSIONS,
  "--no-prompt",
  "--config",
  `${repo}deno.json`,
  "--output",
  output,
  ...(target ? ["--target", target] : []),
  // Workers are not found by deno compile's module graph: name each one.
  "--include",
  `${repo}lib/oci/layer_decode_worker.ts`,
  `${repo}main.ts`,
];
console.error(`compile: deno ${cmd.join(" ")}`);
const out = await new Deno.Command(Deno.execPath(), {
  args: cmd,
  stdout: "inherit",
  stderr: "piped",
}).output();
const stderr = new TextDecoder().decode(out.stderr);
if (!out.success) {
  Deno.stderr.writeSync(out.stderr);
  if (
    /denort|download|dl\.deno\.land|error sending request|dns error|connect/i.test(stderr) &&
    !denort
  ) {
    console.error(
      "compile: deno could not fetch the denort runtime it embeds into the binary.\n" +
        "  Without internet access to Deno's release servers, download denort for this Deno version\n" +
        `  (deno ${Deno.version.deno}, target ${
          target ?? "this host"
        }) elsewhere and set DENORT_BIN=/path/to/denort.`,
    );
  }
  Deno.exit(1);
}
console.error(`compile: wrote ${output}`);
