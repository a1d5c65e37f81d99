/**
 * Pseudo-terminals for `run -t` (pty(7), ioctl_tty(2)): a master trun keeps
 * and a slave the container gets as its stdin, stdout and stderr.
 */
import { sys } from "./syscall.ts";

const TIOCSWINSZ = 0x5414;
const TIOCSPTLCK = 0x40045431;
const TIOCGPTPEER = 0x5441;
const O_RDWR = 2, O_NOCTTY = 0o400, O_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;

/** A pty pair as raw fds (both O_CLOEXEC). */
export interface Pty {
  /** trun's side. */
  master: number;
  /** The container's side. */
  slave: number;
}

/** Opens a new pty pair from /dev/ptmx. */
export function openPty(): Pty {
  const path = new TextEncoder().encode("/dev/ptmx\0");
  const master = Number(
    sys(
      "openat",
      [AT_FDCWD, path, O_RDWR | O_NOCTTY | O_CLOEXEC, 0],
      `opening "/dev/ptmx" for a terminal`,
    ),
  );
  try {
    sys("ioctl", [master, TIOCSPTLCK, new Uint8Array(4)], "unlocking the pseudo-terminal");
    // TIOCGPTPEER opens the slave through the master, never by a path that
    // another process could swap (Linux 4.13).
    const slave = Number(
      sys(
        "ioctl",
        [master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC],
        "opening the pseudo-terminal's slave",
      ),
    );
    return { master, slave };
  } catch (e) {
    sys("close", [master]);
    throw e;
  }
}

/** Sets a terminal's window size (TIOCSWINSZ). */
export function setWindowSize(fd: number, rows: number, columns: number): void {
  const ws = new Uint16Array([rows, columns, 0, 0]);
  sys("ioctl", [fd, TIOCSWINSZ, new Uint8Array(ws.buffer)], "setting the terminal size");
}
