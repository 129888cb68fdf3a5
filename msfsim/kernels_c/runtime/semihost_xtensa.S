/* Xtensa simulator semihosting: a2 = call number, a3.. arguments, result in a2. */
    .text
    .literal_position
    .global msf_simcall
    .global msf_semihost_trap
    .type msf_simcall, @function
    .align 4
msf_simcall:
msf_semihost_trap:
    simcall
    ret
    .size msf_simcall, . - msf_simcall
