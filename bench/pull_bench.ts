/**
 * Pull benchmark: cold `trun pull` (download + verify + unpack) of the
 * largest fixture image from a registry on 127.0.0.1, median of N, beside
 * `skopeo copy` + `umoci unpack` and `podman pull` of the same image from the
 * same registry when those are installed; then where trun's time goes
 * (download and hashing vs. decompression and file creation), from the
 * pull's own events.
 *
 *   deno run -A bench/pull_bench.ts [--runs 5] [--image trun-fixtures/big:latest]
 *
 * Numbers are reported, never asserted.
 */
// deno-lint-ignore-file no-console -- a benchmark script: its output is the point.
import { startFixtureRegistry } from "../tests/_harness/registry.ts";
import { pullImage } from "../lib/image/pull.ts";
import { openStore } from "../lib/store/mod.ts";
import { ownershipMode } from "../lib/runtime/userns_exec.ts";

const args = Deno.args;
const opt = (
  name: string,
  dflt: string,
) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const runs = Number(opt("--runs", "5"));
const image = opt("--image", "trun-fixtures/big:latest");
const main = new URL("../main.ts", import.meta.url).pathname;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function which(tool: string): Promise<boolean> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
    .output();
  return r.success;
}

async function timed(
  cmd: string,
  cmdArgs: string[],
  env: Record<string, string> = {},
): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, {
    args: cmdArgs,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${cmdArgs.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return (performance.now() - t0) / 1000;
}

async function rmrf(path: string): Promise<void> {
  // Trees with subordinate-id owners need the tool that made them to remove
  // them; podman and umoci leave such trees.
  await Deno.remove(path, { recursive: true }).catch(async () => {
    await new Deno.Command("podman", { args: ["unshare", "rm", "-rf", path] }).output().catch(
      () => {},
    );
  });
}

const reg = await startFixtureRegistry({ images: [image] });
const ref = `${reg.host}/${image}`;
try {
  // Sizes, for MB/s.
  const probeRoot = await Deno.makeTempDir();
  const store = openStore(probeRoot);
  const events: { type: string; t: number }[] = [];
  const t0 = performance.now();
  const res = await pullImage(ref, {
    store,
    ...ownershipMode(),
    onEvent: (e) => events.push({ type: e.type, t: performance.now() }),
  });
  const img = store.findImage(res.configDigest)!;
  const compressed = (img.config.rootfs?.diff_ids?.length ?? 0) > 0
    ? JSON.parse(new TextDecoder().decode(store.manifest(img.id).bytes)).layers.reduce(
      (n: number, l: { size: number }) => n + l.size,
      0,
    )
    : 0;
  const unpacked = img.size;
  const firstUnpack = events.find((e) => e.type === "unpacking")?.t ?? t0;
  const end = performance.now();
  store.close();
  await rmrf(probeRoot);
  console.log(
    `image ${ref}: ${(compressed / 1e6).toFixed(1)} MB compressed, ${
      (unpacked / 1e6).toFixed(1)
    } MB unpacked`,
  );
  console.log(
    `in-process breakdown (one run): resolve + download + sha256 ${
      ((firstUnpack - t0) / 1000).toFixed(2)
    } s, ` +
      `gunzip + tar + file creation + flush ${((end - firstUnpack) / 1000).toFixed(2)} s`,
  );

  const report = (label: string, xs: number[]) =>
    console.log(
      `${label.padEnd(34)} median ${median(xs).toFixed(2)} s  ${
        (compressed / 1e6 / median(xs)).toFixed(1)
      } MB/s compressed, ` +
        `${(unpacked / 1e6 / median(xs)).toFixed(1)} MB/s unpacked  (runs: ${
          xs.map((x) => x.toFixed(2)).join(" ")
        })`,
    );

  const trun: number[] = [];
  for (let i = 0; i < runs; i++) {
    const root = await Deno.makeTempDir({ prefix: "trun-pull-bench-" });
    trun.push(
      await timed(Deno.execPath(), ["run", "-A", main, "pull", "-q", ref], { TRUN_ROOT: root }),
    );
    await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", main, "rmi", ref],
      env: { TRUN_ROOT: root },
      stdout: "null",
      stderr: "null",
    }).output();
    await rmrf(root);
  }
  report("trun pull", trun);

  if ((await which("skopeo")) && (await which("umoci"))) {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const dir = await Deno.makeTempDir({ prefix: "skopeo-bench-" });
      const copy = await timed("skopeo", [
        "copy",
        "--src-tls-verify=false",
        `docker://${ref}`,
        `oci:${dir}/oci:big`,
      ]);
      const unpack = await timed("umoci", [
        "unpack",
        ...(Deno.uid() === 0 ? [] : ["--rootless"]),
        "--image",
        `${dir}/oci:big`,
        `${dir}/bundle`,
      ]);
      xs.push(copy + unpack);
      await rmrf(dir);
    }
    report("skopeo copy + umoci unpack", xs);
  } else console.log("skopeo copy + umoci unpack: skipped (apt install skopeo umoci)");

  if (await which("podman")) {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const dir = await Deno.makeTempDir({ prefix: "podman-bench-" });
      const common = [
        "--root",
        `${dir}/root`,
        "--runroot",
        `${dir}/run`,
        "--storage-driver",
        "overlay",
      ];
      try {
        xs.push(await timed("podman", [...common, "pull", "-q", "--tls-verify=false", ref]));
      } catch (e) {
        console.log(`podman pull failed: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
        break;
      } finally {
        await new Deno.Command("podman", {
          args: [...common, "rmi", "-a", "-f"],
          stdout: "null",
          stderr: "null",
        }).output();
        await rmrf(dir);
      }
    }
    if (xs.length) report("podman pull", xs);
  } else console.log("podman pull: skipped (apt install podman)");
} finally {
  await reg.stop();
}
