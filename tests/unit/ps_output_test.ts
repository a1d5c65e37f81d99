/**
 * Unit tests of lib/container/ps_output.ts: the host's `ps` output cut to
 * a container's rows as Docker's `top` does (the PID column found by its
 * title, overhanging words joined into the last cell, `ps m` thread rows
 * following their process), and the `ps` options Docker refuses.
 */
import assert from "node:assert/strict";
import {
  checkPsArgs,
  containerRows,
  type ProcessTable,
  PsOutputError,
} from "../../lib/container/ps_output.ts";

const PS_EF = `UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 07:00 ?        00:00:01 /sbin/init
truntest   22150       1  0 07:30 ?        00:00:00 conmon --api-version 1 -c bd52
truntest   22157   22150  0 07:30 ?        00:00:00 sh -c sleep 1000 & sleep 1000 & wait
truntest   22160   22157  0 07:30 ?        00:00:00 sleep 1000
300999     22161   22157  0 07:30 ?        00:00:00 sleep   1000
`;

const PS_EFM = `UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 07:00 ?        00:00:01 /sbin/init
root           -       -  0 07:00 -        00:00:01 -
truntest   22157   22150  0 07:30 ?        00:00:00 sleep 1000
truntest       -       -  0 07:30 -        00:00:00 -
truntest       -       -  0 07:30 -        00:00:00 -
truntest   22200       1  0 07:31 ?        00:00:00 deno
truntest       -       -  0 07:31 -        00:00:00 -
`;

const CONTAINER = new Set([22157, 22160, 22161]);

const CASES: [string, string, ReadonlySet<number>, ProcessTable][] = [
  [
    "ps -ef: the container's rows, the command's words in one cell",
    PS_EF,
    CONTAINER,
    {
      titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
      processes: [
        [
          "truntest",
          "22157",
          "22150",
          "0",
          "07:30",
          "?",
          "00:00:00",
          "sh -c sleep 1000 & sleep 1000 & wait",
        ],
        ["truntest", "22160", "22157", "0", "07:30", "?", "00:00:00", "sleep 1000"],
        // Runs of spaces are one separator, as Go's strings.Fields.
        ["300999", "22161", "22157", "0", "07:30", "?", "00:00:00", "sleep 1000"],
      ],
    },
  ],
  [
    "ps -o pid,comm: PID first",
    "    PID COMMAND\n      1 init\n  22157 sh\n  22160 sleep\n",
    CONTAINER,
    { titles: ["PID", "COMMAND"], processes: [["22157", "sh"], ["22160", "sleep"]] },
  ],
  [
    "ps -efm: thread rows follow a kept process and only it",
    PS_EFM,
    CONTAINER,
    {
      titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
      processes: [
        ["truntest", "22157", "22150", "0", "07:30", "?", "00:00:00", "sleep 1000"],
        ["truntest", "-", "-", "0", "07:30", "-", "00:00:00", "-"],
        ["truntest", "-", "-", "0", "07:30", "-", "00:00:00", "-"],
      ],
    },
  ],
  [
    "no process of the container: titles only",
    PS_EF,
    new Set([4]),
    { titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], processes: [] },
  ],
  [
    "tabs and CRLF-free blank lines are separators",
    "PID\tCMD\n\n22160\tsleep\t1000\n",
    CONTAINER,
    { titles: ["PID", "CMD"], processes: [["22160", "sleep 1000"]] },
  ],
  [
    "a row shorter than the PID column is no process",
    "USER PID CMD\nx\n",
    CONTAINER,
    { titles: ["USER", "PID", "CMD"], processes: [] },
  ],
];

for (const [what, output, pids, want] of CASES) {
  Deno.test(`containerRows(): ${what}`, () => {
    assert.deepEqual(containerRows(output, pids), want);
  });
}

const BAD_OUTPUT: [string, string, string][] = [
  ["no PID column", "COMMAND\nsleep\n", "Couldn't find PID field in ps output"],
  ["an empty output", "", "Couldn't find PID field in ps output"],
  [
    "pid is a title word, not a column",
    "  PIDS CMD\n 1 x\n",
    "Couldn't find PID field in ps output",
  ],
  ["a pid that is no number", "PID CMD\nabc sleep\n", 'Unexpected pid "abc" in ps output'],
];
for (const [what, output, message] of BAD_OUTPUT) {
  Deno.test(`containerRows() refuses ${what}`, () => {
    assert.throws(
      () => containerRows(output, CONTAINER),
      (e) => e instanceof PsOutputError && e.message === message,
    );
  });
}

const PS_ARGS: [string[], string | null][] = [
  [["-ef"], null],
  [["-o", "pid,comm"], null],
  [["-o", "pid=PID,comm"], null],
  [["-o", "pid=PROCESS,comm"], null],
  [["-o", "user=PID"], 'specifying "user=PID" is not allowed'],
  [["-o", "comm,user=PIDX"], 'specifying "comm,user=PIDX" is not allowed'],
  [["aux"], null],
];
for (const [args, error] of PS_ARGS) {
  Deno.test(`checkPsArgs() ${error ? "refuses" : "accepts"} ${args.join(" ")}`, () => {
    if (error === null) checkPsArgs(args);
    else assert.throws(() => checkPsArgs(args), (e) => e instanceof Error && e.message === error);
  });
}
