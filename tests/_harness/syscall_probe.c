/*
 * A static helper for the seccomp tests: makes one raw system call with
 * the arguments given (numbers in C syntax, or `s:TEXT` for a pointer to
 * the string TEXT) and prints "ok" or "errno=N". Busybox cannot make
 * add_key, io_uring_setup, an odd personality or a real access(2) (its
 * `test -w` answers yes to root without asking the kernel), so the tests
 * run this inside their containers instead.
 *
 *   syscall_probe NR [ARG0 ... ARG5]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long a[6] = {0};
  if (argc < 2) {
    fprintf(stderr, "usage: syscall_probe NR [ARG...]\n");
    return 2;
  }
  for (int i = 2; i < argc && i < 8; i++) {
    a[i - 2] = argv[i][0] == 's' && argv[i][1] == ':' ? (long)(argv[i] + 2)
                                                      : (long)strtoul(argv[i], 0, 0);
  }
  long r = syscall(strtol(argv[1], 0, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
  if (r < 0) {
    printf("errno=%d\n", errno);
    return 1;
  }
  printf("ok\n");
  return 0;
}
