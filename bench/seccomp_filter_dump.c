/*
 * Prints the seccomp filter of a process as raw struct sock_filter[]
 * (ptrace PTRACE_SECCOMP_GET_FILTER, filter 0; needs root). Used by
 * bench/seccomp_bench.ts to compare trun's compiled filters with
 * libseccomp's (runc) for the same profile.
 *
 *   seccomp_filter_dump PID > filter.bin
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <linux/filter.h>
#include <unistd.h>
#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
int main(int argc, char **argv) {
  pid_t pid = atoi(argv[1]);
  if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0) { perror("attach"); return 1; }
  waitpid(pid, 0, __WALL);
  long n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, 0);
  if (n < 0) { perror("get filter"); return 1; }
  struct sock_filter *f = calloc(n, sizeof *f);
  ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, f);
  fwrite(f, sizeof *f, n, stdout);
  ptrace(PTRACE_DETACH, pid, 0, 0);
  return 0;
}
