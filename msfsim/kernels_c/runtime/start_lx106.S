/* Xtensa lx106 (call0 ABI) entry: exception vectors, stack, then C. */
/* PS after reset has EXCM set, which would turn any exception into a double exception:
 * run with UM = 1 (exceptions go to the user vector, EPC1/EXCCAUSE) and interrupts masked. */
#define MSF_XT_PS_INIT 0x2F /* UM (bit 5) | INTLEVEL 15 */
    .section .text.msf_start, "ax"
    .literal_position
    .global _start
    .type _start, @function
    .align 4
_start:
    movi a0, 0
    movi a1, __stack_top
    movi a2, msf_vectors
    wsr.vecbase a2
    movi a2, MSF_XT_PS_INIT
    wsr.ps a2
    rsync
    call0 msf_crt_init
    call0 main
    call0 msf_finish
1:  j 1b

/* VECBASE-relative vectors (lx106 layout): kernel 0x30, user 0x50, double 0x70. */
#define MSF_XT_KERNEL_VECTOR 0x30
#define MSF_XT_USER_VECTOR 0x50
#define MSF_XT_DOUBLE_VECTOR 0x70
    .section .text.msf_vectors, "ax"
    .align 256
    .global msf_vectors
msf_vectors:
    .org msf_vectors + MSF_XT_KERNEL_VECTOR
    j msf_xt_exception
    .org msf_vectors + MSF_XT_USER_VECTOR
    j msf_xt_exception
    .org msf_vectors + MSF_XT_DOUBLE_VECTOR
    j msf_xt_exception

    .text
    .literal_position
    .align 4
msf_xt_exception:
    rsr.epc1 a2
    rsr.exccause a3
    rsr.excvaddr a4
    movi a1, __stack_top
    call0 msf_fault
3:  j 3b
