/**
 * Unit tests of lib/cli/progress.ts: Docker's progress text, the in-place
 * redrawing on a terminal (exact escape sequences), plain lines without
 * one, and how pull and push events become layer lines.
 */
import assert from "node:assert/strict";
import {
  goDuration,
  ProgressRenderer,
  progressText,
  PullDisplay,
  PushDisplay,
} from "../../lib/cli/progress.ts";

const L1 = `sha256:${"1a".repeat(32)}`;
const L2 = `sha256:${"2b".repeat(32)}`;
const CFG = `sha256:${"cf".repeat(32)}`;

/** A renderer that records what it writes, with a clock the test moves. */
function recorder(tty: boolean, width = 200) {
  const out: string[] = [];
  const clock = { now: 1_000_000 };
  const r = new ProgressRenderer({
    tty,
    width,
    write: (t) => out.push(t),
    now: () => clock.now,
  });
  return { r, out, clock, text: () => out.join("") };
}

Deno.test("progressText() draws Docker's bar, counts and time left", () => {
  const now = 10_000;
  assert.equal(progressText({ current: 0, total: 0 }, 200, now), "");
  assert.equal(progressText({ current: 1_234_567 }, 200, now), " 1.235MB");
  assert.equal(
    progressText({ current: 2_650_000, total: 5_300_000 }, 200, now),
    `[${"=".repeat(25)}>${" ".repeat(25)}]   2.65MB/5.3MB`,
  );
  assert.equal(
    progressText({ current: 2_650_000, total: 5_300_000, start: now - 4_000 }, 200, now),
    `[${"=".repeat(25)}>${" ".repeat(25)}]   2.65MB/5.3MB 4s`,
  );
  // No bar up to 110 columns, no time left up to 50.
  assert.equal(
    progressText({ current: 2_650_000, total: 5_300_000, start: now - 4_000 }, 100, now),
    "  2.65MB/5.3MB 4s",
  );
  assert.equal(progressText({ current: 1, total: 2, start: 0 }, 50, now), "      1B/2B");
  assert.equal(
    progressText({ current: 5_300_000, total: 5_300_000, start: 0 }, 200, now),
    `[${"=".repeat(50)}>]    5.3MB/5.3MB`,
  );
  // A current beyond the total shows only the current count.
  assert.equal(progressText({ current: 3000, total: 2000 }, 80, now), "     3kB");
});

Deno.test("goDuration() prints whole seconds as Go's Duration.String()", () => {
  assert.equal(goDuration(0), "0s");
  assert.equal(goDuration(45), "45s");
  assert.equal(goDuration(65), "1m5s");
  assert.equal(goDuration(3603), "1h0m3s");
});

Deno.test("ProgressRenderer on a terminal redraws each layer's line in place", () => {
  const { r, text } = recorder(true, 80);
  r.line("latest: Pulling from library/busybox");
  r.status("1a1a1a1a1a1a", "Pulling fs layer");
  r.status("2b2b2b2b2b2b", "Pulling fs layer");
  r.status("1a1a1a1a1a1a", "Download complete");
  r.line("Digest: sha256:x");
  assert.equal(
    text(),
    "latest: Pulling from library/busybox\n" +
      // A new layer: a new line, up one, clear, write, down one.
      "\n\x1b[1A\x1b[2K\r1a1a1a1a1a1a: Pulling fs layer \r\x1b[1B" +
      "\n\x1b[1A\x1b[2K\r2b2b2b2b2b2b: Pulling fs layer \r\x1b[1B" +
      // An update of the first layer: up two lines and back.
      "\x1b[2A\x1b[2K\r1a1a1a1a1a1a: Download complete \r\x1b[2B" +
      "Digest: sha256:x\n",
  );
});

Deno.test("ProgressRenderer on a terminal starts a new block after a plain line", () => {
  const { r, text } = recorder(true, 80);
  r.status("1a1a1a1a1a1a", "Pushed");
  r.line("done");
  r.status("1a1a1a1a1a1a", "Pushed");
  assert.equal(
    text(),
    "\n\x1b[1A\x1b[2K\r1a1a1a1a1a1a: Pushed \r\x1b[1B" + "done\n" +
      "\n\x1b[1A\x1b[2K\r1a1a1a1a1a1a: Pushed \r\x1b[1B",
  );
});

Deno.test("ProgressRenderer on a terminal draws progress at most every 100 ms", () => {
  const { r, out, clock } = recorder(true, 80);
  r.status("1a1a1a1a1a1a", "Downloading", { current: 100, total: 1000 });
  clock.now += 20;
  r.status("1a1a1a1a1a1a", "Downloading", { current: 200, total: 1000 });
  assert.equal(out.length, 1, "an update 20 ms later is skipped");
  clock.now += 100;
  r.status("1a1a1a1a1a1a", "Downloading", { current: 300, total: 1000 });
  assert.equal(out.length, 2);
  clock.now += 1;
  r.status("1a1a1a1a1a1a", "Downloading", { current: 1000, total: 1000 });
  assert.equal(out.length, 3, "the final count is always drawn");
  r.status("1a1a1a1a1a1a", "Download complete");
  assert.equal(out.length, 4, "a status change is always drawn");
  assert.match(out[1]!, /Downloading {5}300B\/1kB\r/);
});

Deno.test("ProgressRenderer without a terminal prints each state once, no counts", () => {
  const { r, text } = recorder(false);
  r.status("1a1a1a1a1a1a", "Pulling fs layer");
  r.status("1a1a1a1a1a1a", "Downloading", { current: 1, total: 10 });
  r.status("1a1a1a1a1a1a", "Downloading", { current: 5, total: 10 });
  r.status("1a1a1a1a1a1a", "Download complete");
  r.line("Digest: sha256:x");
  assert.equal(
    text(),
    "1a1a1a1a1a1a: Pulling fs layer\n1a1a1a1a1a1a: Downloading\n" +
      "1a1a1a1a1a1a: Download complete\nDigest: sha256:x\n",
  );
  assert.ok(!text().includes("\x1b"));
});

Deno.test("PullDisplay turns a fresh pull's events into Docker's layer lines", () => {
  const { r, text } = recorder(false);
  const d = new PullDisplay(r);
  d.event({ type: "layer-start", digest: L1, total: 10 });
  d.event({ type: "layer-progress", digest: L1, current: 5, total: 10 });
  d.event({ type: "layer-done", digest: L1, current: 10, total: 10 });
  d.event({ type: "layer-start", digest: L2, total: 10 });
  d.event({ type: "layer-done", digest: L2, current: 10, total: 10 });
  d.event({ type: "unpacking" });
  d.event({ type: "unpacking", digest: L1 });
  d.event({ type: "unpacking", digest: L2 });
  d.event({ type: "done", digest: CFG });
  d.finish(false);
  assert.ok(d.changed);
  assert.equal(
    text(),
    [
      "1a1a1a1a1a1a: Pulling fs layer",
      "1a1a1a1a1a1a: Downloading",
      "1a1a1a1a1a1a: Download complete",
      "2b2b2b2b2b2b: Pulling fs layer",
      "2b2b2b2b2b2b: Download complete",
      "1a1a1a1a1a1a: Extracting",
      "1a1a1a1a1a1a: Pull complete",
      "2b2b2b2b2b2b: Extracting",
      "2b2b2b2b2b2b: Pull complete",
      "",
    ].join("\n"),
  );
});

Deno.test("PullDisplay shows no layer lines for an image that is up to date", () => {
  const { r, text } = recorder(false);
  const d = new PullDisplay(r);
  d.event({ type: "layer-exists", digest: L1, total: 10 });
  d.event({ type: "layer-exists", digest: L2, total: 10 });
  d.event({ type: "unpacking" });
  assert.equal(text(), "");
  assert.ok(!d.changed);
  d.finish(true);
  assert.equal(text(), "");
});

Deno.test("PullDisplay shows held 'Already exists' lines once something is fetched", () => {
  const { r, text } = recorder(false);
  const d = new PullDisplay(r);
  d.event({ type: "layer-exists", digest: L1, total: 10 });
  assert.equal(text(), "");
  d.event({ type: "layer-start", digest: L2, total: 10 });
  d.event({ type: "layer-done", digest: L2, current: 10, total: 10 });
  d.finish(false);
  assert.equal(
    text(),
    "1a1a1a1a1a1a: Already exists\n2b2b2b2b2b2b: Pulling fs layer\n" +
      "2b2b2b2b2b2b: Download complete\n2b2b2b2b2b2b: Pull complete\n",
  );
});

Deno.test("PullDisplay shows held lines for a new image made of layers already stored", () => {
  const { r, text } = recorder(false);
  const d = new PullDisplay(r);
  d.event({ type: "layer-exists", digest: L1, total: 10 });
  d.finish(false);
  assert.equal(text(), "1a1a1a1a1a1a: Already exists\n");
});

Deno.test("PushDisplay shows layers and hides the config blob", () => {
  const { r, text } = recorder(false);
  const d = new PushDisplay(r, new Set([CFG]));
  d.event({ type: "layer-exists", digest: L1, total: 10 });
  d.event({ type: "layer-start", digest: L2, total: 10 });
  d.event({ type: "layer-progress", digest: L2, current: 4, total: 10 });
  d.event({ type: "layer-done", digest: L2, current: 10, total: 10 });
  d.event({ type: "layer-start", digest: CFG, total: 1 });
  d.event({ type: "layer-done", digest: CFG, current: 1, total: 1 });
  d.event({ type: "done", digest: `sha256:${"99".repeat(32)}` });
  assert.equal(
    text(),
    "1a1a1a1a1a1a: Layer already exists\n2b2b2b2b2b2b: Preparing\n" +
      "2b2b2b2b2b2b: Pushing\n2b2b2b2b2b2b: Pushed\n",
  );
});
