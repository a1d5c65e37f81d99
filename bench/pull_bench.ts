/**
 * Pull benchmark: cold `trun pull` (download + verify + unpack) of the
 * largest fixture image, or of a root filesystem tar pushed as a one-layer
 * gzip image (`--tar`, e.g. a `debootstrap --variant=minbase` Debian), from
 * a registry on 127.0.0.1, median of N, beside `podman pull` (fresh
 * `--root`, overlay driver), `skopeo copy` + `umoci unpack` when installed,
 * and the floor: `curl | gzip -dc | tar -x` of the same blobs. The tools run
 * interleaved, one of each per round, so that a loaded machine slows them
 * alike; each time is printed with the 1-minute load average at its end.
 * Then where trun's time goes, from the pull's own events.
 *
 *   deno run -A bench/pull_bench.ts [--runs 5] [--image trun-fixtures/big:latest]
 *   deno run -A bench/pull_bench.ts --tar /tmp/debian.tar [--runs 5] [--baseline OTHER/main.ts]
 *
 * `--baseline` adds another checkout's `trun pull` to each round (before
 * and after a change, side by side).
 *
 * Run it as the unprivileged user for the rootless numbers, as root for
 * root's. Numbers are reported, never asserted.
 *
 * Every tool unpacks under TMPDIR. Point it at a freshly made file system
 * (`scripts/bench_fs.sh`, as root): on an ext4 that has seen many
 * thousands of files deleted, as a test machine's /tmp has, creating an
 * inode scans the recently freed ones (`recently_deleted` in a kernel
 * profile) and GNU tar alone slowed from 1.5 s to 9 s, which hides every
 * difference measured here.
 */
// deno-lint-ignore-file no-console -- a benchmark script: its output is the point.
import { type Registry, startFixtureRegistry, startRegistry } from "../tests/_harness/registry.ts";
import { pullImage } from "../lib/image/pull.ts";
import { openStore } from "../lib/store/mod.ts";
import { ownershipMode } from "../lib/runtime/userns_exec.ts";

const args = Deno.args;
const opt = (
  name: string,
  dflt: string,
) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const runs = Number(opt("--runs", "5"));
const tar = args.includes("--tar") ? opt("--tar", "") : undefined;
const image = tar !== undefined
  ? "bench/rootfs:latest"
  : opt("--image", "trun-fixtures/big:latest");
const main = new URL("../main.ts", import.meta.url).pathname;
const baseline = args.includes("--baseline") ? opt("--baseline", "") : undefined;

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

const loadavg = () => Deno.loadavg()[0]!.toFixed(2);

// Pushes `tar` as a one-layer gzip image through a scratch trun store.
async function pushTar(reg: Registry, path: string, ref: string): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "trun-pull-bench-push-" });
  try {
    for (const cmd of [["import", path, ref], ["push", ref]]) {
      await timed(Deno.execPath(), ["run", "-A", main, ...cmd], { TRUN_ROOT: root });
    }
  } finally {
    await rmrf(root);
  }
  console.log(`pushed ${path} to ${reg.host} as ${ref}`);
}

// The layer blobs of `ref`, bottom first.
async function layerBlobs(reg: Registry, repo: string, tag: string): Promise<string[]> {
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    headers: {
      accept:
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
    },
  });
  const m = await r.json();
  return (m.layers as { digest: string }[]).map((l) => l.digest);
}

const reg = tar !== undefined
  ? await startRegistry()
  : await startFixtureRegistry({ images: [image] });
const ref = `${reg.host}/${image}`;
try {
  if (tar !== undefined) await pushTar(reg, tar, ref);
  // Sizes, for MB/s.
  const probeRoot = await Deno.makeTempDir();
  const store = openStore(probeRoot);
  const events: { type: string; digest?: string; t: number }[] = [];
  const t0 = performance.now();
  const res = await pullImage(ref, {
    store,
    ...ownershipMode(),
    onEvent: (e) =>
      events.push({
        type: e.type,
        ...(e.digest ? { digest: e.digest } : {}),
        t: performance.now(),
      }),
  });
  const img = store.findImage(res.configDigest)!;
  const compressed = (img.config.rootfs?.diff_ids?.length ?? 0) > 0
    ? JSON.parse(new TextDecoder().decode(store.manifest(img.id).bytes)).layers.reduce(
      (n: number, l: { size: number }) => n + l.size,
      0,
    )
    : 0;
  const unpacked = img.size;
  const at = (e: { t: number } | undefined) => e ? ((e.t - t0) / 1000).toFixed(2) : "-";
  const end = performance.now();
  store.close();
  await rmrf(probeRoot);
  console.log(
    `image ${ref}: ${(compressed / 1e6).toFixed(1)} MB compressed, ${
      (unpacked / 1e6).toFixed(1)
    } MB unpacked, ${res.chainIds.length} layers`,
  );
  console.log(
    `in-process timeline (one run, s from start): first unpack ${
      at(events.find((e) => e.type === "unpacking" && e.digest))
    }, last download done ${at(events.findLast((e) => e.type === "layer-done"))}, done ${
      ((end - t0) / 1000).toFixed(2)
    }`,
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

  const [repo, tag] = image.split(":") as [string, string];
  const blobs = await layerBlobs(reg, repo, tag);
  const haveUmoci = (await which("skopeo")) && (await which("umoci"));
  const havePodman = await which("podman");
  if (!haveUmoci) console.log("skopeo copy + umoci unpack: skipped (apt install skopeo umoci)");
  if (!havePodman) console.log("podman pull: skipped (apt install podman)");
  const times: Record<string, number[]> = {};
  const note = (label: string, t: number) => {
    (times[label] ??= []).push(t);
    console.log(`  ${label.padEnd(28)} ${t.toFixed(2)} s  (load ${loadavg()})`);
  };
  for (let i = 0; i < runs; i++) {
    console.log(`round ${i + 1}/${runs}:`);
    const dir = await Deno.makeTempDir({ prefix: "trun-pull-bench-" });
    try {
      const pullTrun = async () =>
        note(
          "trun pull",
          await timed(Deno.execPath(), ["run", "-A", main, "pull", "-q", ref], {
            TRUN_ROOT: `${dir}/trun`,
          }),
        );
      const pullBaseline = async () => {
        if (baseline === undefined) return;
        note(
          "trun pull (baseline)",
          await timed(Deno.execPath(), ["run", "-A", baseline, "pull", "-q", ref], {
            TRUN_ROOT: `${dir}/baseline`,
          }),
        );
      };
      // Alternate which of the two goes first: the first of a round can meet a different machine.
      if (i % 2 === 0) {
        await pullTrun();
        await pullBaseline();
      } else {
        await pullBaseline();
        await pullTrun();
      }
      if (havePodman) {
        // Podman refuses a runroot longer than 50 characters, which a TMPDIR
        // on another filesystem easily gives; the runroot holds no layers.
        const runroot = await Deno.makeTempDir({ dir: "/tmp", prefix: "pbr-" });
        const common = [
          "--root",
          `${dir}/podman`,
          "--runroot",
          runroot,
          "--storage-driver",
          "overlay",
        ];
        try {
          note(
            "podman pull",
            await timed("podman", [...common, "pull", "-q", "--tls-verify=false", ref]),
          );
        } catch (e) {
          console.log(`podman pull failed: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
        } finally {
          await rmrf(runroot);
        }
      }
      // The floor: download, decompress and create the files, nothing else.
      await Deno.mkdir(`${dir}/floor`);
      const script = blobs.map((b) =>
        `curl -sf ${reg.url}/v2/${repo}/blobs/${b} | gzip -dc | tar -x ${
          Deno.uid() === 0 ? "" : "--exclude='./dev/*' "
        }-C ${dir}/floor`
      ).join(" && ");
      note(
        "floor (curl|gzip -dc|tar -x)",
        await timed("bash", ["-c", `set -o pipefail; ${script}`]),
      );
      if (haveUmoci) {
        const copy = await timed("skopeo", [
          "copy",
          "--src-tls-verify=false",
          `docker://${ref}`,
          `oci:${dir}/oci:img`,
        ]);
        const unpack = await timed("umoci", [
          "unpack",
          ...(Deno.uid() === 0 ? [] : ["--rootless"]),
          "--image",
          `${dir}/oci:img`,
          `${dir}/bundle`,
        ]);
        note("skopeo copy + umoci unpack", copy + unpack);
      }
    } finally {
      await rmrf(dir);
      // Deleting the trees leaves the kernel work (journal, discards) that
      // would slow the next round's first pull: let it finish untimed.
      await new Deno.Command("sync").output();
    }
  }
  for (const [label, xs] of Object.entries(times)) report(label, xs);
  const t = times["trun pull"]!;
  for (const other of ["trun pull (baseline)", "podman pull", "floor (curl|gzip -dc|tar -x)"]) {
    const xs = times[other];
    if (xs?.length) {
      console.log(
        `trun / ${other}: ${(median(t) / median(xs)).toFixed(2)} (medians); per round: ${
          t.map((x, i) => xs[i] ? (x / xs[i]!).toFixed(2) : "-").join(" ")
        }`,
      );
    }
  }
} finally {
  await reg.stop();
}
