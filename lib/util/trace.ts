/**
 * Start-up tracing across trun's processes: with `TRUN_TRACE=FILE`, each
 * process (the CLI, the runtime conmon runs, the exit command) appends
 * `WALL_MS PID PROCESS_MS LABEL` lines to FILE, so one `run` gives a
 * timeline of all of them (`sort -n FILE`). The wall clock lets lines of
 * different processes be compared; the process clock counts from that
 * process's own start (Deno's `performance.now()`), so a line also shows
 * how long Deno took to get there. Off (one environment lookup) when unset.
 */

const file = (() => {
  try {
    return Deno.env.get("TRUN_TRACE");
  } catch {
    return undefined;
  }
})();

/** Appends one timeline line for `label`, when `TRUN_TRACE` names a file. */
export function trace(label: string): void {
  if (!file) return;
  const now = performance.now();
  const line = `${(performance.timeOrigin + now).toFixed(2)} ${Deno.pid} ${
    now.toFixed(1)
  } ${label}\n`;
  try {
    Deno.writeTextFileSync(file, line, { append: true });
  } catch {
    // Tracing never fails a command.
  }
}
