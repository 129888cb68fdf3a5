/* RISC-V semihosting: a0 = operation, a1 = argument. The three-instruction sequence must be
 * uncompressed and in one page for the host to recognise the ebreak as a semihosting call. */
    .text
    .option push
    .option norvc
    .balign 16
    .global msf_semihost_call
    .global msf_semihost_trap
    .type msf_semihost_call, @function
msf_semihost_call:
    slli zero, zero, 0x1f
msf_semihost_trap:
    ebreak
    srai zero, zero, 7
    ret
    .size msf_semihost_call, . - msf_semihost_call
    .option pop
