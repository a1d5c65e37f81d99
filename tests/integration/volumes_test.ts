// Volumes and the other mounts of `run`/`create`: named volumes outliving
// their containers, anonymous ones going with `rm -v` and `volume prune`,
// `volume rm` refusing a volume in use, the copy of an image's directory
// into an empty volume (owners kept), --mount (bind, tmpfs), --tmpfs,
// --cidfile, and `system df` agreeing with what was made. Run as the test
// user and as root.
import assert from "node:assert/strict";
import {
  hostCapabilities,
  requires,
  runInMappedUserns,
  subRanges,
  type TrunSandbox,
  trunSandbox,
} from "../_harness/host.ts";
import { busyboxRootfs } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");

function test(name: string, fn: () => Promise<void>, extra = base) {
  Deno.test({ name: `${name}${extra.suffix}`, ignore: extra.ignore, fn });
}

/** A sandbox whose containers are removed (forced) when the test ends. */
async function sandbox(): Promise<TrunSandbox & { rootfs: string }> {
  const sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  const cleanup = async () => {
    const ls = await sb.run(["ps", "-a", "-q", "--no-trunc"]);
    const ids = ls.code === 0 ? ls.stdout.split("\n").filter((l) => l !== "") : [];
    if (ids.length > 0) await sb.run(["rm", "-f", "-v", ...ids]);
    await sb.cleanup();
  };
  return { ...sb, rootfs, cleanup, [Symbol.asyncDispose]: cleanup };
}

type Sb = Awaited<ReturnType<typeof sandbox>>;

/** `trun ARGS`, asserting exit 0; returns stdout. */
async function ok(sb: Sb, args: string[]): Promise<string> {
  const r = await sb.run(args);
  assert.equal(r.code, 0, `trun ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The names `volume ls -q` lists, sorted. */
async function volumes(sb: Sb): Promise<string[]> {
  return (await ok(sb, ["volume", "ls", "-q"])).split("\n").filter((l) => l !== "").sort();
}

test("a named volume outlives rm and a second container sees its data", async () => {
  await using sb = await sandbox();
  const id = (await ok(sb, [
    "run",
    "-d",
    "-v",
    "data:/data",
    "--rootfs",
    sb.rootfs,
    "sh",
    "-c",
    "echo hello > /data/f; sleep 100",
  ])).trim();
  assert.deepEqual(await volumes(sb), ["data"]);
  // The data dir is the volume's _data in the store, as Podman keeps it.
  const mountpoint = (await ok(sb, ["volume", "inspect", "--format", "{{.Mountpoint}}", "data"]))
    .trim();
  assert.equal(mountpoint, `${sb.env.TRUN_ROOT}/volumes/data/_data`);
  for (let i = 0; i < 100 && (await Deno.stat(`${mountpoint}/f`).catch(() => null)) === null; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await ok(sb, ["rm", "-f", "-v", id]);
  assert.deepEqual(await volumes(sb), ["data"], "rm -v keeps named volumes");
  const out = await ok(sb, [
    "run",
    "--rm",
    "-v",
    "data:/data:ro",
    "--rootfs",
    sb.rootfs,
    "cat",
    "/data/f",
  ]);
  assert.equal(out, "hello\n");
  const ro = await sb.run([
    "run",
    "-v",
    "data:/data:ro",
    "--rootfs",
    sb.rootfs,
    "touch",
    "/data/g",
  ]);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
});

test("rm -v and --rm remove anonymous volumes; volume prune the unused anonymous ones, -a all", async () => {
  await using sb = await sandbox();
  const create = async (...flags: string[]) =>
    (await ok(sb, ["create", ...flags, "--rootfs", sb.rootfs, "true"])).trim();
  const a = await create("-v", "/anon", "-v", "keep:/keep");
  const listed = await volumes(sb);
  assert.equal(listed.length, 2);
  const anon = listed.find((v) => v !== "keep")!;
  assert.match(anon, /^[0-9a-f]{64}$/);
  const mounts = JSON.parse(await ok(sb, ["inspect", "--format", "{{json .Mounts}}", a]));
  assert.deepEqual(
    mounts.map((m: { Name: string; Destination: string; Type: string }) => [
      m.Type,
      m.Name,
      m.Destination,
    ]),
    [["volume", anon, "/anon"], ["volume", "keep", "/keep"]],
  );
  await ok(sb, ["rm", "-v", a]);
  assert.deepEqual(await volumes(sb), ["keep"]);

  // Without -v the anonymous volume stays, dangling, until a prune.
  const b = await create("-v", "/anon2");
  await ok(sb, ["rm", b]);
  assert.equal((await volumes(sb)).length, 2);
  const dangling = await ok(sb, ["volume", "ls", "-q", "--filter", "dangling=true"]);
  assert.equal(dangling.split("\n").filter((l) => l).length, 2);
  const pruned = await ok(sb, ["volume", "prune", "-f"]);
  assert.match(pruned, /^Deleted Volumes:\n[0-9a-f]{64}\n\nTotal reclaimed space: 0B\n$/);
  assert.deepEqual(await volumes(sb), ["keep"], "prune without -a keeps named volumes");
  assert.equal(
    await ok(sb, ["volume", "prune", "-a", "-f"]),
    "Deleted Volumes:\nkeep\n\nTotal reclaimed space: 0B\n",
  );
  assert.deepEqual(await volumes(sb), []);

  // run -d --rm: the anonymous volume goes with the container; a foreground run's too.
  await ok(sb, ["run", "-d", "--rm", "-v", "/x", "--rootfs", sb.rootfs, "true"]);
  for (let i = 0; i < 200 && (await volumes(sb)).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(await volumes(sb), []);
  await ok(sb, ["run", "--rm", "-v", "/y", "--rootfs", sb.rootfs, "touch", "/y/z"]);
  assert.deepEqual(await volumes(sb), []);
  // Without --rm the container stays, and so does its anonymous volume, until rm -v.
  await ok(sb, ["run", "--name", "kept", "-v", "/w", "--rootfs", sb.rootfs, "touch", "/w/z"]);
  assert.equal((await volumes(sb)).length, 1);
  await ok(sb, ["rm", "-v", "kept"]);
  assert.deepEqual(await volumes(sb), []);
});

test("volume rm refuses a volume in use by any container; -f removes the container too", async () => {
  await using sb = await sandbox();
  const id = (await ok(sb, ["create", "-v", "busy:/b", "--rootfs", sb.rootfs, "true"])).trim();
  const r = await sb.run(["volume", "rm", "busy"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`remove busy: volume is in use - \\[${id}\\]`));
  assert.deepEqual(await volumes(sb), ["busy"]);
  const missing = await sb.run(["volume", "rm", "nosuch"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such volume: nosuch/);
  assert.equal(await ok(sb, ["volume", "rm", "-f", "busy", "nosuch"]), "busy\nnosuch\n");
  assert.deepEqual(await volumes(sb), []);
  assert.equal((await ok(sb, ["ps", "-a", "-q"])).trim(), "", "the container went with -f");

  // A running container whose user is not root, with a directory of its own
  // in the volume: -f kills it from the caller's user namespace, and the
  // directory of a subordinate id still goes.
  await ok(sb, [
    "run",
    "--rm",
    "-v",
    "held:/h",
    "--rootfs",
    sb.rootfs,
    "sh",
    "-c",
    "mkdir /h/own && touch /h/own/f && chown -R 1000:1000 /h/own && chmod 700 /h/own",
  ]);
  // A number no other test sleeps for, to find the process afterwards.
  const naptime = `${100000 + Math.floor(Math.random() * 800000)}`;
  const running = (await ok(sb, [
    "run",
    "-d",
    "-u",
    "1000:1000",
    "-v",
    "held:/h",
    "--rootfs",
    sb.rootfs,
    "sleep",
    naptime,
  ])).trim();
  assert.equal(await ok(sb, ["inspect", "-f", "{{.State.Running}}", running]), "true\n");
  assert.equal(await ok(sb, ["volume", "rm", "-f", "held"]), "held\n");
  assert.deepEqual(await volumes(sb), []);
  assert.equal((await ok(sb, ["ps", "-a", "-q"])).trim(), "", "the running container went too");
  const left = await new Deno.Command("pgrep", { args: ["-f", `^sleep ${naptime}$`] }).output();
  assert.equal(new TextDecoder().decode(left.stdout), "", "no container process outlives it");
});

test("--tmpfs and --mount type=tmpfs give a tmpfs with Docker's defaults and the options", async () => {
  await using sb = await sandbox();
  const out = await ok(sb, [
    "run",
    "--tmpfs",
    "/t:size=64m,mode=1777",
    "--mount",
    "type=tmpfs,destination=/u,tmpfs-size=1m,tmpfs-mode=700",
    "--rootfs",
    sb.rootfs,
    "sh",
    "-c",
    "grep -E ' /(t|u) ' /proc/mounts; stat -c '%n %a' /t /u",
  ]);
  const line = (p: string) => out.split("\n").find((l) => l.split(" ")[1] === p) ?? "";
  for (const [path, size] of [["/t", "size=65536k"], ["/u", "size=1024k"]]) {
    const opts = line(path!).split(" ")[3]?.split(",") ?? [];
    assert.equal(line(path!).split(" ")[2], "tmpfs", out);
    for (const o of ["rw", "nosuid", "nodev", "noexec", size!]) {
      assert.ok(opts.includes(o), `${path} has ${o}: ${out}`);
    }
  }
  assert.match(out, /^\/t 1777$/m);
  assert.match(out, /^\/u 700$/m);
});

test("--mount type=bind,ro binds read-only; a missing source fails as Docker's --mount", async () => {
  await using sb = await sandbox();
  const dir = `${sb.dir}/share`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/f`, "shared\n");
  const out = await ok(sb, [
    "run",
    "--mount",
    `type=bind,source=${dir},target=/m,readonly`,
    "--rootfs",
    sb.rootfs,
    "sh",
    "-c",
    "cat /m/f; touch /m/g 2>&1 || echo refused",
  ]);
  assert.match(out, /^shared\n.*Read-only file system\nrefused\n$/s);
  const missing = await sb.run([
    "run",
    "--mount",
    `type=bind,src=${sb.dir}/nope,dst=/m`,
    "--rootfs",
    sb.rootfs,
    "true",
  ]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /bind source path does not exist: .*\/nope/);
  // -v makes a missing host directory, as Docker does.
  await ok(sb, ["run", "--rm", "-v", `${sb.dir}/made:/m`, "--rootfs", sb.rootfs, "touch", "/m/x"]);
  assert.ok((await Deno.stat(`${sb.dir}/made/x`)).isFile);
  const bad = await sb.run(["run", "--mount", "type=bind,dst=/m,frob=1", "--rootfs", sb.rootfs]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /unexpected key 'frob' in 'frob=1'/);
});

test("--cidfile writes the full id and refuses an existing file", async () => {
  await using sb = await sandbox();
  const file = `${sb.dir}/cid`;
  const id = (await ok(sb, ["create", "--cidfile", file, "--rootfs", sb.rootfs, "true"])).trim();
  assert.equal(await Deno.readTextFile(file), id);
  const again = await sb.run(["run", "-d", "--cidfile", file, "--rootfs", sb.rootfs, "true"]);
  assert.equal(again.code, 125);
  assert.match(
    again.stderr,
    new RegExp(
      `Container ID file found, make sure the other container isn't running or delete ${file}`,
    ),
  );
  assert.equal((await ok(sb, ["ps", "-a", "-q"])).trim().split("\n").length, 1);
});

test("system df counts the volumes made, their sizes and which are in use", async () => {
  await using sb = await sandbox();
  await ok(sb, [
    "run",
    "--rm",
    "-v",
    "big:/d",
    "--rootfs",
    sb.rootfs,
    "sh",
    "-c",
    "head -c 3000 /dev/zero > /d/f",
  ]);
  await ok(sb, ["volume", "create", "empty"]);
  await ok(sb, ["create", "-v", "big:/d", "--rootfs", sb.rootfs, "true"]);
  const df = await ok(sb, [
    "system",
    "df",
    "--format",
    "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
  ]);
  assert.match(df, /^Local Volumes\|2\|1\|3kB\|0B \(0%\)$/m);
  assert.match(df, /^Containers\|1\|0\|/m);
  const verbose = await ok(sb, ["system", "df", "-v"]);
  assert.match(
    verbose,
    /Local Volumes space usage:\n\nVOLUME NAME\s+LINKS\s+SIZE\nbig\s+1\s+3kB\nempty\s+0\s+0B\n/,
  );
  const inspect = JSON.parse(await ok(sb, ["volume", "inspect", "empty", "big"]));
  assert.deepEqual(inspect.map((v: { Name: string }) => v.Name), ["empty", "big"]);
  assert.deepEqual(Object.keys(inspect[0]), [
    "CreatedAt",
    "Driver",
    "Labels",
    "Mountpoint",
    "Name",
    "Options",
    "Scope",
  ]);
  // system prune --volumes: the stopped container, then the volumes it freed (anonymous only).
  const pruned = await ok(sb, ["system", "prune", "-f", "--volumes"]);
  assert.match(pruned, /^Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: 0B\n$/);
  assert.deepEqual(await volumes(sb), ["big", "empty"]);
});

test(
  "an empty volume gets the image's directory with its owners; a non-root user writes there",
  async () => {
    await using sb = await sandbox();
    // A root whose /home/app (and a file in it) belongs to uid 1000, as an image's would.
    const rootfs = await busyboxRootfs(`${sb.dir}/rootfs`);
    const app = `${rootfs}/home/app`;
    const script =
      `echo dotfile > ${app}/.profile && chown -R 1000:1000 ${app} && chmod 750 ${app}`;
    if (caps.isRoot) {
      const r = await new Deno.Command("sh", { args: ["-c", script] }).output();
      assert.ok(r.success);
    } else {
      const ranges = await subRanges();
      const r = await runInMappedUserns(["sh", "-c", script], ranges!);
      assert.ok(r.ok, r.stderr);
    }
    const run = (...args: string[]) =>
      sb.run([
        "run",
        "--rm",
        "-v",
        "home:/home/app",
        "--user",
        "1000",
        "--rootfs",
        rootfs,
        ...args,
      ]);
    const r = await run(
      "sh",
      "-c",
      "cat /home/app/.profile; stat -c '%u:%g %a' /home/app; touch /home/app/mine && echo wrote",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "dotfile\n1000:1000 750\nwrote\n");
    // Not copied again into a volume that has content.
    const again = await run("ls", "-a", "/home/app");
    assert.deepEqual(again.stdout.split("\n").filter((l) => l).sort(), [
      ".",
      "..",
      ".profile",
      "mine",
    ]);
    // A fresh volume where the image has nothing is root's, 0755: uid 1000 cannot write, as with Docker.
    const fresh = await sb.run([
      "run",
      "--rm",
      "-v",
      "fresh:/data",
      "--user",
      "1000",
      "--rootfs",
      rootfs,
      "touch",
      "/data/x",
    ]);
    assert.notEqual(fresh.code, 0);
    assert.match(fresh.stderr, /Permission denied/);
    // With nocopy, nothing is copied.
    const nocopy = await sb.run([
      "run",
      "--rm",
      "-v",
      "bare:/home/app:nocopy",
      "--rootfs",
      rootfs,
      "ls",
      "-A",
      "/home/app",
    ]);
    assert.equal(nocopy.stdout, "");
    // Files of other ids in a volume are removed (rootless: in the storage user namespace).
    assert.equal(await ok(sb, ["volume", "rm", "home", "fresh", "bare"]), "home\nfresh\nbare\n");
    assert.deepEqual(await volumes(sb), []);
  },
  requires(caps, "userns", "busybox", "idmap"),
);
