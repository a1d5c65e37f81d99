// `trun run IMAGE`: images pulled from a real registry on 127.0.0.1 run with
// their config, their layers (whiteouts, opaque dirs, owners) and are
// protected from `rmi` while a container uses them.
import assert from "node:assert/strict";
import { hostCapabilities, MAIN_TS, requires, trunSandbox } from "../_harness/host.ts";
import { startFixtureRegistry } from "../_harness/registry.ts";

const caps = await hostCapabilities();
const gate = requires(caps, "userns", "dockerRegistry");
const mapped = requires(caps, "userns", "dockerRegistry", "idmap");

function test(
  name: string,
  g: { ignore: boolean; suffix: string },
  fn: (host: string) => Promise<void>,
) {
  Deno.test({
    name: name + g.suffix,
    ignore: g.ignore,
    fn: async () => {
      await using reg = await startFixtureRegistry({
        images: [
          "trun-fixtures/busybox:latest",
          "trun-fixtures/layered:latest",
          "trun-fixtures/owners:latest",
          "trun-fixtures/multiarch:latest",
        ],
      });
      await fn(reg.host);
    },
  });
}

test("run IMAGE: pulls a missing image, with the pull's output on stderr", gate, async (host) => {
  await using sb = await trunSandbox();
  const r = await sb.run(["run", `${host}/trun-fixtures/busybox:latest`, "echo", "hello"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "hello\n");
  assert.match(r.stderr, /Unable to find image '.*busybox:latest' locally/);
  assert.match(r.stderr, /Status: Downloaded newer image/);
  const again = await sb.run(["run", `${host}/trun-fixtures/busybox:latest`, "echo", "again"]);
  assert.equal(again.stdout, "again\n");
  assert.doesNotMatch(again.stderr, /Unable to find/);
});

test(
  "run --platform: checked, and an image present for another platform is not used",
  gate,
  async (host) => {
    await using sb = await trunSandbox();
    const ref = `${host}/trun-fixtures/busybox:latest`;
    const pull = await sb.run(["pull", "-q", ref]);
    assert.equal(pull.code, 0, pull.stderr);
    const bogus = await sb.run(["run", "--rm", "--platform", "bogus", ref, "true"]);
    assert.equal(bogus.code, 125);
    assert.match(bogus.stderr, /Invalid platform "bogus"/);
    // The image is amd64 only: asking for s390x means pulling it, which fails.
    const other = await sb.run(["run", "--rm", "--platform", "linux/s390x", ref, "true"]);
    assert.equal(other.code, 125, other.stderr);
    assert.match(other.stderr, /Unable to find image/);
    const same = await sb.run(["run", "--rm", "--platform", "linux/amd64", ref, "true"]);
    assert.equal(same.code, 0, same.stderr);
    assert.doesNotMatch(same.stderr, /Unable to find image/);
  },
);

test("run IMAGE: the image's Cmd, Env and WorkingDir apply", gate, async (host) => {
  await using sb = await trunSandbox();
  const r = await sb.run(["run", "-i", `${host}/trun-fixtures/layered:latest`], {
    stdin: "pwd; echo $PATH\n",
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "/data\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
});

test("run IMAGE: whiteouts and opaque directories hide lower files", gate, async (host) => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    `${host}/trun-fixtures/layered:latest`,
    "sh",
    "-c",
    "ls /data; echo --; ls /data/dir; echo --; ls /opt",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "b\ndir\n--\ny\n--\nkeep\n");
});

test(
  "run IMAGE: files keep their owners (uid 0, 33, 1000) inside the container",
  mapped,
  async (host) => {
    await using sb = await trunSandbox();
    const r = await sb.run([
      "run",
      `${host}/trun-fixtures/owners:latest`,
      "sh",
      "-c",
      "stat -c '%u:%g %n' /owners/www /owners/app /bin/busybox",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "33:33 /owners/www\n1000:1000 /owners/app\n0:0 /bin/busybox\n");
  },
);

test("run IMAGE --platform picks the platform's manifest", gate, async (host) => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "--platform",
    "linux/amd64",
    `${host}/trun-fixtures/multiarch:latest`,
    "cat",
    "/etc/fixture-platform",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /linux\/amd64/);
});

test("run --pull never: a missing image is a clear error with exit 125", gate, async (host) => {
  await using sb = await trunSandbox();
  const r = await sb.run([
    "run",
    "--pull",
    "never",
    `${host}/trun-fixtures/busybox:latest`,
    "true",
  ]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /not found locally, and --pull=never/);
});

test("run IMAGE: a missing tag fails the pull with exit 125", gate, async (host) => {
  await using sb = await trunSandbox();
  const r = await sb.run(["run", `${host}/trun-fixtures/busybox:nope`, "true"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /nope/);
});

test(
  "rmi refuses an image a container uses, also after its client is killed, and allows it after rm",
  gate,
  async (host) => {
    await using sb = await trunSandbox();
    const ref = `${host}/trun-fixtures/layered:latest`;
    const pull = await sb.run(["pull", "-q", ref]);
    assert.equal(pull.code, 0, pull.stderr);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN_TS, "run", ref, "sh", "-c", "echo up; sleep 30"],
      env: sb.env,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value, "up\n");
    const refused = await sb.run(["rmi", ref]);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /container "[a-z]+_[a-z]+" uses it/);
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    // As with Docker, the container outlives its killed client (its monitor
    // keeps it) and pins the image until it is removed.
    const still = await sb.run(["rmi", ref]);
    assert.equal(still.code, 125, still.stdout);
    const name = refused.stderr.match(/container "([^"]+)"/)![1]!;
    const rm = await sb.run(["rm", "-f", name]);
    assert.equal(rm.code, 0, rm.stderr);
    const removed = await sb.run(["rmi", ref]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /Deleted: sha256:/);
  },
);
