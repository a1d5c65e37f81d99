# trun's clone stub for x86-64 Linux: clones the container's first process
# and makes it run a precomputed list of raw system calls (the "child
# program"), ending in execve. Only native code runs in the child: returning
# to JavaScript after a fork-like clone would crash (V8's pointer cage is
# MADV_DONTFORK), and the parent is multithreaded, so the child must not
# touch any lock either.
#
# Assemble (tests do this and compare with ffi/clone_stub_x86_64.ts):
#   as -o stub.o clone_stub_x86_64.S && objcopy -O binary -j .text stub.o stub.bin
#
# long stub(struct op *ops, long n, long clone_flags, long errfd,
#           sigset_t *saved, void *child_stack)
#
#   child_stack is the top of a stack for the child, or 0 to run it on a
#   copy of the caller's stack (fork semantics). With CLONE_VM the child
#   shares the caller's memory and must have its own stack; it then only
#   reads the ops and writes their result cells until execve.
#
#   All signals are blocked (old mask saved to *saved) around clone(), so no
#   handler of the parent's runs in the child; the parent restores its mask
#   at once and returns the child's pid or -errno. The child program restores
#   the mask itself (an rt_sigprocmask op) right before execve.
#
#   struct op {                 (80 bytes)
#     long nr;                  syscall number
#     long a[6];                arguments
#     long ok_errno;            an errno that counts as success (0: none)
#     long store;               address receiving the result, or 0
#     long indirect;            bit i set: a[i] is an address to load the
#                               argument from (a value an earlier op stored);
#                               bit 8 set: the op is a fork (clone without
#                               CLONE_VM), and the parent side writes
#                               {-2, child pid} to errfd and exit_group(0)s
#                               while the child side goes on
#   };
#
#   A negative result other than -ok_errno writes {index, errno} (16 bytes)
#   to errfd and exit_group(127)s; falling off the end exit_group(0)s.
#   errfd is O_CLOEXEC, so EOF on its read side means "execve succeeded".

    .intel_syntax noprefix
    .text
    .globl trun_clone_stub
trun_clone_stub:
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov r12, rdi                # ops
    mov r13, rsi                # n
    mov r14, rcx                # errfd
    mov r15, r8                 # saved mask
    mov rbx, rdx                # clone flags
    push r9                     # child stack

    push -1                     # a full signal set on the stack
    mov eax, 14                 # rt_sigprocmask(SIG_SETMASK, &full, saved, 8)
    mov edi, 2
    mov rsi, rsp
    mov rdx, r15
    mov r10d, 8
    syscall
    add rsp, 8

    pop rsi                     # clone(flags, child_stack, NULL, NULL, 0)
    mov rdi, rbx
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    mov eax, 56
    syscall
    test rax, rax
    jz .child

    mov rbx, rax                # parent: restore the mask, return pid/-errno
    mov eax, 14
    mov edi, 2
    mov rsi, r15
    xor edx, edx
    mov r10d, 8
    syscall
    mov rax, rbx
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    ret

.child:
    xor r15d, r15d              # op index
.loop:
    cmp r15, r13
    jae .done
    imul rbx, r15, 80
    add rbx, r12
    mov rcx, [rbx+72]           # indirect mask
    mov rdi, [rbx+8]
    test cl, 1
    jz 1f
    mov rdi, [rdi]
1:  mov rsi, [rbx+16]
    test cl, 2
    jz 2f
    mov rsi, [rsi]
2:  mov rdx, [rbx+24]
    test cl, 4
    jz 3f
    mov rdx, [rdx]
3:  mov r10, [rbx+32]
    test cl, 8
    jz 4f
    mov r10, [r10]
4:  mov r8, [rbx+40]
    test cl, 16
    jz 5f
    mov r8, [r8]
5:  mov r9, [rbx+48]
    test cl, 32
    jz 6f
    mov r9, [r9]
6:  mov rax, [rbx]
    syscall
    test rax, rax
    js .failed
    mov rcx, [rbx+72]
    test ecx, 0x100             # a fork whose parent reports the child
    jz 7f                       # and leaves (see "flags" above)
    test rax, rax
    jz 7f
    push rax                    # {-2, pid} record
    push -2
    mov eax, 1                  # write(errfd, rsp, 16)
    mov rdi, r14
    mov rsi, rsp
    mov edx, 16
    syscall
    xor edi, edi
    mov eax, 231                # exit_group(0)
    syscall
7:  mov rcx, [rbx+64]
    test rcx, rcx
    jz .next
    mov [rcx], rax
    jmp .next
.failed:
    neg rax
    cmp rax, [rbx+56]
    je .next
    push rax                    # {index, errno} record
    push r15
    mov eax, 1                  # write(errfd, rsp, 16)
    mov rdi, r14
    mov rsi, rsp
    mov edx, 16
    syscall
    mov edi, 127
    mov eax, 231                # exit_group(127)
    syscall
.next:
    inc r15
    jmp .loop
.done:
    xor edi, edi
    mov eax, 231                # exit_group(0)
    syscall
