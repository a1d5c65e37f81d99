// readRootfsText() follows symlinks inside the root only, across layers.
import assert from "node:assert/strict";
import { readRootfsText, resolveInRootfs } from "../../lib/runtime/rootfs_files.ts";

async function tree(): Promise<{ top: string; low: string; outside: string }> {
  const base = await Deno.makeTempDir();
  const top = `${base}/top`, low = `${base}/low`, outside = `${base}/outside`;
  for (const d of [`${top}/etc`, `${low}/etc`, `${low}/real`, outside]) {
    await Deno.mkdir(d, { recursive: true });
  }
  await Deno.writeTextFile(`${low}/etc/passwd`, "low-passwd");
  await Deno.writeTextFile(`${top}/etc/group`, "top-group");
  await Deno.writeTextFile(`${low}/etc/group`, "low-group");
  await Deno.writeTextFile(`${low}/real/file`, "real");
  await Deno.writeTextFile(`${outside}/secret`, "host secret");
  await Deno.symlink("/real/file", `${top}/etc/abs`);
  await Deno.symlink("../../../../../../real/file", `${top}/etc/climb`);
  await Deno.symlink(`${outside}/secret`, `${top}/etc/escape`);
  await Deno.symlink("loop", `${top}/etc/loop`);
  return { top, low, outside };
}

Deno.test("readRootfsText() takes the topmost layer's file", async () => {
  const { top, low } = await tree();
  assert.equal(readRootfsText([top, low], "/etc/group"), "top-group");
  assert.equal(readRootfsText([top, low], "/etc/passwd"), "low-passwd");
});

Deno.test("readRootfsText() resolves absolute and climbing links inside the root", async () => {
  const { top, low } = await tree();
  assert.equal(readRootfsText([top, low], "/etc/abs"), "real");
  assert.equal(readRootfsText([top, low], "/etc/climb"), "real");
});

Deno.test("readRootfsText() never reads a host file through a link", async () => {
  const { top, low } = await tree();
  assert.equal(readRootfsText([top, low], "/etc/escape"), null);
  assert.equal(resolveInRootfs([top, low], "/etc/loop"), null);
  assert.equal(readRootfsText([top, low], "/nope"), null);
});
