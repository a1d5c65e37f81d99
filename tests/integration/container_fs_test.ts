// A container's files: `diff` after exec changed them, `cp` both ways for
// a running and a stopped container (symlinks inside it must resolve in
// its root, never on the host), `cp` with tar streams, and `export`. Runs
// as the test user and as root.
import assert from "node:assert/strict";
import { hostCapabilities, requires, type TrunSandbox, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");

function test(name: string, fn: () => Promise<void>) {
  Deno.test({ name: `${name}${base.suffix}`, ignore: base.ignore, fn });
}

type Sandbox = TrunSandbox & { rootfs: string };

/** A sandbox with a busybox rootfs of the caller's own, whose containers are removed at the end. */
async function fsSandbox(): Promise<Sandbox> {
  const inner = await trunSandbox();
  const sb: TrunSandbox = {
    ...inner,
    run: (args, opts = {}) =>
      inner.run(args, { ...opts, env: { TRUN_MONITOR: "trun", ...opts.env } }),
  };
  // trunSandbox's cleanup removes the containers a test left.
  return { ...sb, rootfs: await busyboxRootfs() };
}

/** `run -d --name NAME --rootfs ROOTFS sh -c SCRIPT`. */
async function detached(sb: Sandbox, name: string, script: string): Promise<void> {
  const r = await sb.run(["run", "-d", "--name", name, "--rootfs", sb.rootfs, "sh", "-c", script]);
  assert.equal(r.code, 0, `run -d: ${r.stderr}`);
}

/** Runs `sh -c SCRIPT` in the running container `name`; fails the test if it fails. */
async function sh(sb: Sandbox, name: string, script: string): Promise<string> {
  const r = await sb.run(["exec", name, "sh", "-c", script]);
  assert.equal(r.code, 0, `exec ${script}: ${r.stderr}`);
  return r.stdout;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * Runs trun for its raw stdout (a tar with binaries is no text). Within
 * 120 s, or the test fails naming the processes still running (a CI run
 * once hung here for minutes, not reproduced since).
 */
async function trunBytes(sb: Sandbox, args: string[]): Promise<Uint8Array> {
  const child = new Deno.Command("setsid", {
    args: ["--wait", Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args],
    env: { ...sb.env, NO_COLOR: "1", TRUN_MONITOR: "trun" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), 120_000));
  const out = await Promise.race([child.output(), timeout]);
  clearTimeout(timer);
  if (out === "timeout") {
    const ps = await new Deno.Command("ps", {
      args: ["-u", String(Deno.uid()), "-o", "pid,ppid,stat,args"],
    })
      .output();
    try {
      Deno.kill(-child.pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
    throw new Error(
      `trun ${args.join(" ")} hung; processes:\n${new TextDecoder().decode(ps.stdout)}`,
    );
  }
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return out.stdout;
}

/** `tar -tv` (numeric owners) of a tar, as bytes or as text (tar headers are ASCII). */
async function tarList(tar: string | Uint8Array): Promise<string[]> {
  const child = new Deno.Command("tar", {
    args: ["--numeric-owner", "-tvf", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(typeof tar === "string" ? new TextEncoder().encode(tar) : tar);
  await w.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "");
}

/** The `owner/group` and name of each `tar -tv` line. */
function owners(lines: string[]): Map<string, string> {
  return new Map(lines.map((l) => {
    const f = l.split(/\s+/);
    return [f.slice(5).join(" "), f[1]!];
  }));
}

const RUNNING = "while true; do sleep 0.2; done";

test("diff after exec: A, C and D in Docker's order, the same once stopped", async () => {
  await using sb = await fsSandbox();
  await detached(sb, "df", RUNNING);
  await sh(
    sb,
    "df",
    "touch /tmp/new; rm /bin/ls; echo x >> /etc/passwd; rm -rf /home; mkdir /home; touch /home/h",
  );
  const want = [
    "C /bin",
    "D /bin/ls",
    "C /etc",
    "C /etc/passwd",
    // /home was deleted and made again (opaque): its old content is deleted.
    "C /home",
    "D /home/app",
    "A /home/h",
    "C /tmp",
    "A /tmp/new",
    "",
  ].join("\n");
  const diff = await sb.run(["diff", "df"]);
  assert.equal(diff.code, 0, diff.stderr);
  assert.equal(diff.stdout, want);
  assert.equal((await sb.run(["stop", "-t", "0", "df"])).code, 0);
  const after = await sb.run(["container", "diff", "df"]);
  assert.equal(after.code, 0, after.stderr);
  assert.equal(after.stdout, want);
});

test("cp out of and into a running container: symlinks resolve inside its root, never on the host", async () => {
  await using sb = await fsSandbox();
  const host = sb.dir;
  await Deno.writeTextFile(`${host}/host-secret`, "HOST\n");
  await Deno.mkdir(`${host}/hostdir`);
  await detached(sb, "cc", RUNNING);
  await sh(
    sb,
    "cc",
    [
      "echo ctr > /secret",
      "ln -s /secret /abs-link",
      "ln -s ../../../../../../../../../secret /rel-link",
      `ln -s ${host}/host-secret /host-link`,
      `ln -s ${host}/hostdir /host-dir-link`,
      "ln -s ../../../../../../../.. /up",
      "mkdir -p /data/sub && echo one > /data/sub/f && chown -R 1000:1000 /data",
    ].join("; "),
  );
  // -L follows the link inside the container: /secret there, whatever the path says.
  for (const link of ["abs-link", "rel-link"]) {
    const r = await sb.run(["cp", "-L", `cc:/${link}`, `${host}/${link}.out`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await Deno.readTextFile(`${host}/${link}.out`), "ctr\n");
  }
  const viaUp = await sb.run(["cp", `cc:/up${host}/host-secret`, `${host}/up.out`]);
  assert.equal(viaUp.code, 1);
  assert.match(viaUp.stderr, new RegExp(`No such container:path: cc:/up${host}/host-secret`));
  // A link to a host path names nothing in the container.
  const hostLink = await sb.run(["cp", "-L", "cc:/host-link", `${host}/host-link.out`]);
  assert.equal(hostLink.code, 1);
  assert.match(hostLink.stderr, /No such container:path: cc:\/host-link/);
  await assert.rejects(Deno.lstat(`${host}/host-link.out`), Deno.errors.NotFound);
  // Without -L the link itself is copied, as text.
  assert.equal((await sb.run(["cp", "cc:/host-link", `${host}/link-itself`])).code, 0);
  assert.equal(await Deno.readLink(`${host}/link-itself`), `${host}/host-secret`);

  // A directory out: a new path becomes the copy; files belong to the caller.
  const out = await sb.run(["cp", "cc:/data", `${host}/outdir`]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(await Deno.readTextFile(`${host}/outdir/sub/f`), "one\n");
  assert.equal((await Deno.lstat(`${host}/outdir/sub/f`)).uid, Deno.uid());
  // `DIR/.` into an existing directory copies the content only.
  await Deno.mkdir(`${host}/content`);
  assert.equal((await sb.run(["cp", "cc:/data/.", `${host}/content`])).code, 0);
  assert.equal(await Deno.readTextFile(`${host}/content/sub/f`), "one\n");

  // Into the container: through a link to a host directory, nothing reaches the host.
  await Deno.writeTextFile(`${host}/in.txt`, "in\n");
  const escape = await sb.run(["cp", `${host}/in.txt`, "cc:/host-dir-link/in.txt"]);
  assert.equal(escape.code, 1);
  assert.match(escape.stderr, /No such container:path: cc:\/host-dir-link/);
  assert.deepEqual([...Deno.readDirSync(`${host}/hostdir`)], []);
  // With the directory made inside the container, the copy lands there.
  await sh(sb, "cc", `mkdir -p ${host}/hostdir`);
  assert.equal((await sb.run(["cp", `${host}/in.txt`, "cc:/host-dir-link/"])).code, 0);
  assert.equal(await sh(sb, "cc", `cat ${host}/hostdir/in.txt`), "in\n");
  assert.deepEqual([...Deno.readDirSync(`${host}/hostdir`)], []);

  // Files copied in belong to the container's root, unless -a keeps the source's ids.
  assert.equal((await sb.run(["cp", `${host}/in.txt`, "cc:/data/"])).code, 0);
  assert.equal(await sh(sb, "cc", "stat -c %u:%g /data/in.txt"), "0:0\n");
  if (Deno.uid() === 0) await Deno.chown(`${host}/in.txt`, 1234, 1234);
  assert.equal((await sb.run(["cp", "-a", `${host}/in.txt`, "cc:/data/kept.txt"])).code, 0);
  // Rootless, the caller's own files are root's inside the user namespace.
  assert.equal(
    await sh(sb, "cc", "stat -c %u:%g /data/kept.txt"),
    Deno.uid() === 0 ? "1234:1234\n" : "0:0\n",
  );
  // A directory onto a file, and a file into a missing directory, are refused.
  const dirOnFile = await sb.run(["cp", `${host}/outdir`, "cc:/secret"]);
  assert.equal(dirOnFile.code, 1);
  assert.match(dirOnFile.stderr, /cannot copy a directory onto the file "cc:\/secret"/);
  const noDir = await sb.run(["cp", `${host}/in.txt`, "cc:/missing/"]);
  assert.equal(noDir.code, 1);
  assert.match(noDir.stderr, /no such directory "cc:\/missing\/"/);
});

test("cp out of and into a stopped container (its layers mounted by trun, no mount left)", async () => {
  await using sb = await fsSandbox();
  await detached(sb, "st", "echo made > /made; ln -s / /rootlink; mkdir /box");
  assert.equal((await sb.run(["wait", "st"])).stdout, "0\n");
  const out = await sb.run(["cp", "st:/made", `${sb.dir}/made`]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(await Deno.readTextFile(`${sb.dir}/made`), "made\n");
  // A link to / is the container's root: its passwd, not the host's.
  const pw = await sb.run(["cp", "-L", "st:/rootlink/etc/passwd", `${sb.dir}/passwd`]);
  assert.equal(pw.code, 0, pw.stderr);
  assert.equal(
    await Deno.readTextFile(`${sb.dir}/passwd`),
    await Deno.readTextFile(`${sb.rootfs}/etc/passwd`),
  );
  await Deno.writeTextFile(`${sb.dir}/in.txt`, "stopped\n");
  const cin = await sb.run(["cp", `${sb.dir}/in.txt`, "st:/box/"]);
  assert.equal(cin.code, 0, cin.stderr);
  // The copy is in the writable layer: diff sees it, and so does the container once started.
  assert.match((await sb.run(["diff", "st"])).stdout, /^A \/box\/in\.txt$/m);
  const upper = `${sb.env.TRUN_ROOT}/containers/${
    (await sb.run(["inspect", "--format", "{{.Id}}", "st"])).stdout.trim()
  }/upper`;
  assert.ok((await Deno.lstat(`${upper}/box/in.txt`)).isFile);
  assert.equal((await sb.run(["start", "st"])).code, 0);
  await sb.run(["wait", "st"]);
  const back = await sb.run(["cp", "st:/box/in.txt", "-"]);
  assert.equal(back.code, 0, back.stderr);
  assert.match(back.stdout, /stopped\n/);
  // The layers were mounted only behind a descriptor: nothing is left mounted.
  const mounts = await Deno.readTextFile("/proc/self/mountinfo");
  assert.ok(!mounts.includes(sb.dir), "no mount left under the sandbox");
});

test("cp with -: a tar from stdin into a directory, a tar of a container path to stdout", async () => {
  await using sb = await fsSandbox();
  await detached(sb, "tt", RUNNING);
  await sh(sb, "tt", "mkdir -p /data/sub && echo one > /data/sub/f && chown 1000:1000 /data/sub/f");
  const src = `${sb.dir}/src`;
  await Deno.mkdir(`${src}/dir`, { recursive: true });
  await Deno.writeTextFile(`${src}/dir/a.txt`, "a\n");
  const tar = await new Deno.Command("tar", { args: ["-cf", "-", "-C", src, "dir"] }).output();
  assert.ok(tar.success);
  const cin = await sb.run(["cp", "-", "tt:/tmp"], { stdin: tar.stdout });
  assert.equal(cin.code, 0, cin.stderr);
  assert.equal(await sh(sb, "tt", "cat /tmp/dir/a.txt; stat -c %u /tmp/dir/a.txt"), "a\n0\n");
  const notDir = await sb.run(["cp", "-", "tt:/etc/passwd"], { stdin: tar.stdout });
  assert.equal(notDir.code, 1);
  assert.match(notDir.stderr, /destination "tt:\/etc\/passwd" must be a directory/);

  const cout = await sb.run(["cp", "tt:/data", "-"]);
  assert.equal(cout.code, 0, cout.stderr);
  const lines = await tarList(cout.stdout);
  const own = owners(lines);
  assert.deepEqual([...own.keys()], ["data/", "data/sub/", "data/sub/f"]);
  // The container's own ids, not the host's subordinate ones.
  assert.equal(own.get("data/"), "0/0");
  assert.equal(own.get("data/sub/f"), "1000/1000");
});

test("export: the container's files with its own owners, mount points empty; -o FILE; running and stopped", async () => {
  await using sb = await fsSandbox();
  await detached(sb, "ex", RUNNING);
  await sh(sb, "ex", "echo x > /exported && chown 1000:1000 /exported");
  for (const state of ["running", "stopped"]) {
    const lines = await tarList(await trunBytes(sb, ["export", "ex"]));
    const own = owners(lines);
    assert.equal(own.get("bin/busybox"), "0/0", state);
    assert.equal(own.get("exported"), "1000/1000", state);
    assert.ok(own.has("proc/"), state);
    // The container's /proc is a mount point: not walked into.
    assert.ok(!lines.some((l) => / proc\/1\//.test(l)), state);
    // Docker's names: relative, without a root entry.
    assert.ok([...own.keys()].every((n) => !/^(\.{0,2}\/)/.test(n)), state);
    const file = `${sb.dir}/export-${state}.tar`;
    const o = await sb.run(["container", "export", "-o", file, "ex"]);
    assert.equal(o.code, 0, o.stderr);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    assert.equal((await tarList(await Deno.readFile(file))).length, lines.length, state);
    if (state === "running") assert.equal((await sb.run(["stop", "-t", "0", "ex"])).code, 0);
  }
});

test("export refuses a terminal, as Docker does", async () => {
  await using sb = await fsSandbox();
  await detached(sb, "term", "true");
  // script(1) gives trun a terminal on stdout.
  const cmd = [
    Deno.execPath(),
    "run",
    "-A",
    "--quiet",
    new URL("../../main.ts", import.meta.url)
      .pathname,
    "export",
    "term",
  ].join(" ");
  const r = await new Deno.Command("script", {
    args: ["-qec", cmd, "/dev/null"],
    env: { ...sb.env, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  assert.equal(r.code, 1);
  assert.match(
    new TextDecoder().decode(r.stdout),
    /cowardly refusing to save to a terminal\. Use the -o flag or redirect/,
  );
});

test("missing container and missing path: Docker's messages, exit status 1", async () => {
  await using sb = await fsSandbox();
  await detached(sb, "mm", RUNNING);
  const rows: [string[], RegExp][] = [
    [["diff", "nosuch"], /No such container: nosuch/],
    [["export", "nosuch"], /No such container: nosuch/],
    [["cp", "nosuch:/etc", sb.dir], /No such container: nosuch/],
    [["cp", "mm:/nope", sb.dir], /No such container:path: mm:\/nope/],
    [["cp", `${sb.dir}`, "mm:/nope/deeper/x"], /No such container:path: mm:\/nope\/deeper/],
    [
      ["cp", "mm:/etc/passwd", `${sb.dir}/nope/x`],
      /destination directory ".*\/nope" does not exist/,
    ],
    [["cp", `${sb.dir}/nope`, "mm:/tmp"], /cannot copy ".*\/nope": no such file or directory/],
    [["cp", "a", "b"], /must specify at least one container source/],
    [["cp", "mm:/a", "mm:/b"], /copying between containers is not supported/],
  ];
  for (const [args, message] of rows) {
    const r = await sb.run(args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
});
