/* RV32 benchmark markers: besides the phase, each reads the 64-bit minstret as its very first
 * instruction. Both reads therefore sit at the same offset (0) from their marker's entry, and
 * their difference is exactly what retires between entering msf_bench_begin and entering
 * msf_bench_end: the figure the host counts. A second, independent count where the emulator
 * implements minstret as retired instructions (QEMU with -icount shift=0).
 *
 * Written in assembly so that no compiler can schedule anything ahead of the reads. */
#include "msf_runtime.h"

/* minstreth is read one instruction after minstret: it has carried in between exactly when
 * minstret read 0xffffffff. hi -= (lo == 0xffffffff) makes lo:hi the count at the first read. */
.macro MSF_INSTRET_CARRY lo, hi, tmp
    addi \tmp, \lo, 1
    seqz \tmp, \tmp
    sub \hi, \hi, \tmp
.endm

    .section .text.msf_markers, "ax"
    .balign 4
    .global msf_bench_begin
    .type msf_bench_begin, @function
msf_bench_begin:
    csrr t0, minstret
    csrr t1, minstreth
    /* Stored raw: the carry fix-up is left to the end marker, after its own read, so that
     * as little as possible of the marker falls inside the measured interval. */
    la t2, msf_result
    sw t0, MSF_RESULT_INSTRET_LO(t2)
    sw t1, MSF_RESULT_INSTRET_HI(t2)
    li t0, 1
    sw t0, MSF_RESULT_PHASE(t2)
    ret
    .size msf_bench_begin, . - msf_bench_begin

    .balign 4
    .global msf_bench_end
    .type msf_bench_end, @function
msf_bench_end:
    csrr t0, minstret
    csrr t1, minstreth
    MSF_INSTRET_CARRY t0, t1, t2
    la t2, msf_result
    lw t3, MSF_RESULT_INSTRET_LO(t2)
    lw t4, MSF_RESULT_INSTRET_HI(t2)
    MSF_INSTRET_CARRY t3, t4, t5
    sltu t5, t0, t3 /* borrow out of the low word */
    sub t0, t0, t3
    sub t1, t1, t4
    sub t1, t1, t5
    sw t0, MSF_RESULT_INSTRET_LO(t2)
    sw t1, MSF_RESULT_INSTRET_HI(t2)
    li t0, 2
    sw t0, MSF_RESULT_PHASE(t2)
    ret
    .size msf_bench_end, . - msf_bench_end
