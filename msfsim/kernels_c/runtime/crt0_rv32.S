/* RV32 entry: stack, global pointer, trap vector, then C; the memory guard (PMP) before main. */
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
    call msf_memory_guard
    call main
    call msf_finish
1:  j 1b

    .text
    .balign 4
    .global msf_trap
msf_trap:
    csrr a0, mepc
    csrr a1, mcause
    csrr a2, mtval
    la sp, __stack_top
    call msf_fault
2:  j 2b

/* Memory guard: PMP entries 0-1 the board's flash (TOR: read, execute), 2-3 its SRAM (TOR:
 * read, write, execute), 4 the whole address space (NAPOT, no access). Entries match in
 * index order, so an access outside flash and SRAM, or a write to flash, hits entry 4 and
 * raises an access fault (mtval = the address). All are locked: only locked entries bind
 * machine mode, where the firmware runs (a lock holds until reset). Entries 0 and 2 only
 * hold the lower bounds of the TOR ranges. QEMU's sifive_e maps 512 MB of XIP flash and its
 * virt machine all of -m as RAM; the PMP leaves the firmware only the board's sizes
 * (link.ld.in: __msf_flash_*, __msf_sram_*, 32-byte aligned). */
#define MSF_PMP_R 0x01
#define MSF_PMP_W 0x02
#define MSF_PMP_X 0x04
#define MSF_PMP_TOR 0x08
#define MSF_PMP_NAPOT 0x18
#define MSF_PMP_L 0x80
#define MSF_PMP_FLASH (MSF_PMP_L | MSF_PMP_TOR | MSF_PMP_R | MSF_PMP_X)
#define MSF_PMP_SRAM (MSF_PMP_L | MSF_PMP_TOR | MSF_PMP_R | MSF_PMP_W | MSF_PMP_X)
#define MSF_PMP_NONE (MSF_PMP_L | MSF_PMP_NAPOT)
#define MSF_PMPCFG0 ((MSF_PMP_FLASH << 8) | (MSF_PMP_SRAM << 24)) /* entries 0-3 */
#define MSF_PMPCFG1 MSF_PMP_NONE                                    /* entries 4-7 */

.macro MSF_PMPADDR csr, symbol
    lui t0, %hi(\symbol)
    addi t0, t0, %lo(\symbol)
    srli t0, t0, 2
    csrw \csr, t0
.endm

    .balign 4
    .global msf_memory_guard
    .type msf_memory_guard, @function
msf_memory_guard:
    MSF_PMPADDR pmpaddr0, __msf_flash_start
    MSF_PMPADDR pmpaddr1, __msf_flash_end
    MSF_PMPADDR pmpaddr2, __msf_sram_start
    MSF_PMPADDR pmpaddr3, __msf_sram_end
    li t0, -1 /* NAPOT, all ones: 2^34 bytes, the whole space */
    csrw pmpaddr4, t0
    /* Flash and SRAM first: once entry 4 is on, this code must already be allowed. */
    li t0, MSF_PMPCFG0
    csrw pmpcfg0, t0
    li t0, MSF_PMPCFG1
    csrw pmpcfg1, t0
    ret
    .size msf_memory_guard, . - msf_memory_guard
