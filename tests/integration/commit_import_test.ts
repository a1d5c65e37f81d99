// Images made here: `trun import` of a root file system tar (plain, gzip,
// stdin) and `trun commit` of a container changed by exec, with whiteouts,
// opaque directories, owners and --change, checked by running the new
// images. Runs as the test user and as root.
import assert from "node:assert/strict";
import { hostCapabilities, requires, type TrunSandbox, trunSandbox } from "../_harness/host.ts";
import { busyboxRootfs, busyboxRootfsTar } from "../_harness/rootfs.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "busybox");

function test(name: string, fn: () => Promise<void>) {
  Deno.test({ name: `${name}${base.suffix}`, ignore: base.ignore, fn });
}

/** A sandbox and a busybox root file system tar (owners 0:0) in it. */
async function sandbox(): Promise<TrunSandbox & { tar: string }> {
  const sb = await trunSandbox();
  const tar = await busyboxRootfsTar(`${sb.dir}/rootfs.tar`);
  return { ...sb, tar };
}

async function ok(sb: TrunSandbox, args: string[], stdin?: Uint8Array): Promise<string> {
  const r = await sb.run(args, stdin ? { stdin } : {});
  assert.equal(r.code, 0, `trun ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The diff_ids of `image`. */
async function layers(sb: TrunSandbox, image: string): Promise<string[]> {
  return JSON.parse(await ok(sb, ["inspect", "-f", "{{json .RootFS.Layers}}", image]));
}

test("import makes a one-layer image from a plain, gzip or stdin tar, with --change and -m", async () => {
  await using sb = await sandbox();
  const id = (await ok(sb, [
    "import",
    "-c",
    'CMD ["sh", "-c", "echo from-cmd $MODE"]',
    "-c",
    "ENV MODE=imported",
    "-m",
    "the base",
    sb.tar,
    "bb:1",
  ])).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await ok(sb, ["run", "--rm", "bb:1"]), "from-cmd imported\n");
  const history = await ok(sb, ["history", "--format", "{{.Comment}}", "bb:1"]);
  assert.equal(history, "the base\n");
  assert.equal((await layers(sb, "bb:1")).length, 1);
  assert.equal(await ok(sb, ["inspect", "-f", "{{.Os}}", "bb:1"]), "linux\n");

  // gzip from stdin gives the same layer, so the same image but for the config.
  const gz = await new Deno.Command("gzip", { args: ["-c", sb.tar], stdout: "piped" }).output();
  const fromStdin = (await ok(sb, ["import", "-", "bb:stdin"], gz.stdout)).trim();
  assert.deepEqual(
    await layers(sb, "bb:stdin"),
    await layers(sb, "bb:1"),
    "the diff_id is the uncompressed tar's",
  );
  assert.notEqual(fromStdin, id);
  assert.equal(
    await ok(sb, ["history", "--format", "{{.Comment}}", "bb:stdin"]),
    "Imported from -\n",
  );
});

test("import refuses what it cannot use and records nothing", async () => {
  await using sb = await sandbox();
  const missing = await sb.run(["import", `${sb.dir}/nope.tar`]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /opening ".*nope.tar": no such file/);
  const badChange = await sb.run(["import", "-c", "RUN make", sb.tar]);
  assert.equal(badChange.code, 125);
  assert.match(badChange.stderr, /invalid --change "RUN make": RUN is not a valid change command/);
  const notTar = `${sb.dir}/not.tar`;
  await Deno.writeTextFile(
    notTar,
    "this is not a tar archive at all, just some words\n".repeat(20),
  );
  const bad = await sb.run(["import", notTar]);
  assert.notEqual(bad.code, 0);
  assert.equal(await ok(sb, ["images", "-q"]), "", "no image was recorded");
});

test("commit after exec: added, changed, deleted and replaced files, owners, --change and -m", async () => {
  await using sb = await sandbox();
  await ok(sb, ["import", "-c", 'CMD ["sh"]', "-c", "ENV KEEP=1", sb.tar, "bb:base"]);
  await ok(sb, ["run", "-d", "--name", "c1", "-e", "FROM_RUN=yes", "bb:base", "sleep", "1000"]);
  const script = [
    "echo hello > /etc/greeting",
    "rm /bin/vi",
    "mkdir -p /opt/old && touch /opt/old/a /opt/old/b",
  ].join(" && ");
  await ok(sb, ["exec", "c1", "sh", "-c", script]);
  // A second exec replaces the directory a first layer would have held.
  await ok(sb, [
    "exec",
    "c1",
    "sh",
    "-c",
    "rm -rf /opt/old && mkdir /opt/old && echo new > /opt/old/c && " +
    "mkdir -p /srv/app && echo mine > /srv/app/f && chown -R 1000:1000 /srv/app && " +
    // A directory of the image replaced: opaque in the new layer.
    "rm -rf /home && mkdir /home && touch /home/only",
  ]);
  const id = (await ok(sb, [
    "commit",
    "-m",
    "greeting",
    "-a",
    "Tester <t@example.com>",
    "-c",
    "ENV ADDED=2",
    "c1",
    "bb:next",
  ])).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const check = [
    "cat /etc/greeting",
    "test ! -e /bin/vi && echo vi-gone",
    "ls /opt/old | tr '\\n' ' '",
    "echo",
    "stat -c '%u:%g %n' /srv/app/f",
    "ls -A /home",
    "echo $KEEP $ADDED $FROM_RUN",
  ].join("; ");
  assert.equal(
    await ok(sb, ["run", "--rm", "bb:next", "sh", "-c", check]),
    "hello\nvi-gone\nc \n1000:1000 /srv/app/f\nonly\n1 2 yes\n",
  );
  // The committed command is the container's, as Docker commits it.
  assert.equal(
    await ok(sb, ["inspect", "-f", "{{json .Config.Cmd}} {{.Author}}", "bb:next"]),
    '["sleep","1000"] Tester <t@example.com>\n',
  );
  const history = await ok(sb, [
    "history",
    "--no-trunc",
    "--format",
    "{{.CreatedBy}}|{{.Comment}}",
    "bb:next",
  ]);
  assert.equal(history.split("\n")[0], "sleep 1000|greeting");
  const [first, second] = await layers(sb, "bb:next");
  assert.deepEqual([first], await layers(sb, "bb:base"), "the base's layer, then one more");
  assert.match(second ?? "", /^sha256:/);
  // The base image is untouched.
  assert.equal(
    await ok(sb, ["run", "--rm", "bb:base", "sh", "-c", "test -e /bin/vi && echo vi-there"]),
    "vi-there\n",
  );
});

test("commit refuses a container without an image, naming what to do", async () => {
  await using sb = await trunSandbox();
  const rootfs = await busyboxRootfs();
  await ok(sb, ["create", "--name", "raw", "--rootfs", rootfs, "true"]);
  const r = await sb.run(["commit", "raw"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /runs on a root directory \(--rootfs\), not an image: "trun export raw/);
  const none = await sb.run(["commit", "nosuch"]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /No such container: nosuch/);
});
