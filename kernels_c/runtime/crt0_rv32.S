/* RV32 entry: stack, global pointer, trap vector, then C. */
    .section .text.msf_start, "ax"
    .global _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la t0, msf_trap
    csrw mtvec, t0
    call msf_crt_init
    call main
    call msf_finish
1:  j 1b

    .text
    .balign 4
    .global msf_trap
msf_trap:
    csrr a0, mepc
    csrr a1, mcause
    la sp, __stack_top
    call msf_fault
2:  j 2b
