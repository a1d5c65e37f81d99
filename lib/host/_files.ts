/**
 * Small readers the host probes share: a file's text or number (null when
 * absent), a stat that does not throw, and a command's success and stderr.
 * Private to lib/host/.
 */
import { errorMessage } from "../util/errors.ts";

/** A file's text, or null when it is absent or unreadable. */
export function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    // Absent (an older kernel, another distribution) or unreadable: reported as unknown.
    return null;
  }
}

/** A file holding one integer (a sysctl), or null. */
export function readInt(path: string): number | null {
  const text = readText(path);
  if (text === null) return null;
  const n = Number(text.trim());
  return Number.isInteger(n) ? n : null;
}

/** stat(2) following links, or null when the path cannot be reached. */
export function statOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(path);
  } catch {
    return null;
  }
}

/** Permission bits as 4 octal digits (`"0666"`). */
export const octal = (mode: number | null): string =>
  ((mode ?? 0) & 0o7777).toString(8).padStart(4, "0");

/** Runs `cmd` with no input or output but stderr (folded onto one line); never throws. */
export async function run(cmd: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    })
      .output();
    const stderr = new TextDecoder().decode(out.stderr).trim().replaceAll("\n", "; ");
    return { ok: out.success, stderr };
  } catch (e) {
    return { ok: false, stderr: errorMessage(e) };
  }
}
