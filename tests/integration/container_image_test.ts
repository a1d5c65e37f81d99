// The classic demos with an image from the local test registry, with each
// monitor: two containers of one image share the image's files (the same
// lower-layer inode, nothing copied); the host pid from `inspect` enters
// the container's UTS namespace, whose hostname is the short id.
import assert from "node:assert/strict";
import { findTool, hostCapabilities, requires, trunSandbox } from "../_harness/host.ts";
import { startFixtureRegistry } from "../_harness/registry.ts";

const caps = await hostCapabilities();
const base = requires(caps, "userns", "dockerRegistry");
const conmon = (await findTool("conmon")) !== null;
const nsenter = await findTool("nsenter");

for (const m of ["trun", "conmon"] as const) {
  const why = m === "conmon" && !conmon ? " (skipped: conmon not installed)" : "";
  Deno.test({
    name:
      `${m}: two containers of one image share its files; nsenter finds the short id as hostname${
        base.suffix || why
      }`,
    ignore: base.ignore || why !== "",
    fn: async () => {
      await using reg = await startFixtureRegistry({ images: ["trun-fixtures/busybox:latest"] });
      await using sb = await trunSandbox();
      const env = { TRUN_MONITOR: m };
      const ref = `${reg.host}/trun-fixtures/busybox:latest`;
      const pull = await sb.run(["pull", "-q", ref], { env });
      assert.equal(pull.code, 0, pull.stderr);
      const ids: string[] = [];
      for (const name of ["one", "two"]) {
        const r = await sb.run(["run", "-d", "--name", name, ref, "sleep", "1000"], { env });
        assert.equal(r.code, 0, r.stderr);
        ids.push(r.stdout.trim());
      }
      const inode = async (name: string) => {
        const r = await sb.run(["exec", name, "stat", "-c", "%i", "/bin/busybox"], { env });
        assert.equal(r.code, 0, r.stderr);
        return Number(r.stdout.trim());
      };
      // Each overlay has a device of its own; the inode is the lower
      // layer's, the one file in the store.
      const [a, b] = [await inode("one"), await inode("two")];
      assert.equal(a, b, "both containers see one file of the image");
      const inStore = [];
      for await (const e of Deno.readDir(`${sb.env.TRUN_ROOT}/layers`)) {
        const st = await Deno.lstat(`${sb.env.TRUN_ROOT}/layers/${e.name}/bin/busybox`).catch(
          () => null,
        );
        if (st?.isFile) inStore.push(st.ino);
      }
      assert.deepEqual(inStore, [a], "the inode is the store's copy of the layer's file");

      if (nsenter === null) return;
      const pid = await sb.run(["inspect", "--format", "{{.State.Pid}}", "one"], { env });
      assert.equal(pid.code, 0, pid.stderr);
      // Rootless, the UTS namespace belongs to the container's user
      // namespace, which nsenter joins first.
      const userns = caps.isRoot ? [] : ["-U", "--preserve-credentials"];
      const out = await new Deno.Command(nsenter, {
        args: ["-t", pid.stdout.trim(), ...userns, "-u", "hostname"],
        stdin: "null",
      }).output();
      const dec = new TextDecoder();
      assert.ok(out.success, dec.decode(out.stderr));
      assert.equal(dec.decode(out.stdout).trim(), ids[0]!.slice(0, 12));
    },
  });
}
