/**
 * Pseudo-terminals for `run -t` (pty(7), ioctl_tty(2)): a master trun keeps
 * and a slave the container gets as its stdin, stdout and stderr.
 */
import { cString, sys } from "./syscall.ts";
import { AT, encodeWinsize, O, TTY } from "./syscalls.ts";

/** A pty pair as raw fds (both O_CLOEXEC). */
export interface Pty {
  /** trun's side. */
  master: number;
  /** The container's side. */
  slave: number;
}

/** Opens a new pty pair from /dev/ptmx. */
export function openPty(): Pty {
  const flags = O.RDWR | O.NOCTTY | O.CLOEXEC;
  const master = Number(
    sys(
      "openat",
      [AT.FDCWD, cString("/dev/ptmx"), flags, 0],
      `opening "/dev/ptmx" for a terminal`,
    ),
  );
  try {
    sys("ioctl", [master, TTY.SPTLCK, new Uint8Array(4)], "unlocking the pseudo-terminal");
    // TIOCGPTPEER opens the slave through the master, never by a path that
    // another process could swap (Linux 4.13).
    const slave = Number(
      sys("ioctl", [master, TTY.GPTPEER, flags], "opening the pseudo-terminal's slave"),
    );
    return { master, slave };
  } catch (e) {
    sys("close", [master]);
    throw e;
  }
}

/** Sets a terminal's window size (TIOCSWINSZ). */
export function setWindowSize(fd: number, rows: number, columns: number): void {
  sys("ioctl", [fd, TTY.SWINSZ, encodeWinsize(rows, columns)], "setting the terminal size");
}
