/* Arm semihosting (Thumb): r0 = operation, r1 = argument; the host traps `bkpt 0xab`. */
    .syntax unified
    .thumb
    .text
    .global msf_semihost_call
    .global msf_semihost_trap
    .type msf_semihost_call, %function
    .thumb_func
msf_semihost_call:
msf_semihost_trap:
    bkpt 0xab
    bx lr
    .size msf_semihost_call, . - msf_semihost_call
