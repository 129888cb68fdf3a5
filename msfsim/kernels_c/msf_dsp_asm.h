/* msf_dsp_asm.h - internal: inline-assembly fragments shared by the kernels' Thumb-2 loops
 * (include after msf_nnsupport.h; msf_kernels.h decides MSF_DSP_ASM). */
#ifndef MSF_DSP_ASM_H
#define MSF_DSP_ASM_H

#if MSF_DSP_ASM
/* `static void name(const job_type *job)` whose whole body is the assembly text `body`: the
 * job pointer arrives in r0, the text saves and restores what it uses and returns. */
#define MSF_ASM_FUNCTION(name, job_type, body)                                              \
    __attribute__((naked, noinline)) static void name(                                     \
        const job_type *job __attribute__((unused)))                                        \
    {                                                                                       \
        __asm__ volatile(body);                                                             \
    }

/* msf_requantize_fast in the kernels' Thumb-2 loops. MSF_CHANNEL_ASM loads a channel's
 * multiplier, rounding and rshift (msf_channel_params at r9; byte offsets of its multiplier
 * and rshift as strings) into r0-r2; MSF_REQUANT_ASM turns accumulator register `acc` into
 * its saturated int8 in place (clobbers r3, lr). */
#define MSF_CHANNEL_ASM(mult_off, shift_off)                                                \
    "ldrd    r0, r1, [r9, #" mult_off "]\n\t"                                              \
    "ldr     r2, [r9, #" shift_off "]\n\t"
#define MSF_REQUANT_ASM(acc)                                                                \
    "lsl     r3, " acc ", #1\n\t"                                                          \
    "smmlar  lr, r3, r0, r1\n\t"                                                           \
    "add     lr, lr, " acc ", asr #31\n\t"                                                 \
    "asr     lr, lr, r2\n\t"                                                               \
    "ssat    " acc ", #8, lr\n\t"
/* Four channels' accumulators r4-r7 -> int8 stored at r10 (advanced by 4); r9 moves to the
 * next four channels' parameters (clobbers r0-r3, lr). One LDM per channel brings all of
 * msf_channel_params (the kernel sum into r0, unused: r0 is then the shift temporary), so the
 * LDM's writeback also steps r9. */
#define MSF_REQUANT_LDM_ASM(acc)                                                            \
    "ldm     r9!, {r0-r3}\n\t"     /* kernel_sum, multiplier, rounding, rshift */           \
    "lsl     r0, " acc ", #1\n\t"                                                          \
    "smmlar  lr, r0, r1, r2\n\t"                                                           \
    "add     lr, lr, " acc ", asr #31\n\t"                                                 \
    "asr     lr, lr, r3\n\t"                                                               \
    "ssat    " acc ", #8, lr\n\t"
/* MSF_CHANNEL_ASM's callers pass these offsets; MSF_REQUANT_LDM_ASM loads all four words in
 * this order and steps r9 by the struct's size. */
_Static_assert(sizeof(msf_channel_params) == 16, "msf_channel_params read by the assembly");
_Static_assert(offsetof(msf_channel_params, kernel_sum) == 0, "msf_channel_params layout");
_Static_assert(offsetof(msf_channel_params, multiplier) == 4, "msf_channel_params layout");
_Static_assert(offsetof(msf_channel_params, rounding) == 8, "msf_channel_params layout");
_Static_assert(offsetof(msf_channel_params, rshift) == 12, "msf_channel_params layout");
#define MSF_REQUANT4_STORE_ASM                                                              \
    MSF_REQUANT_LDM_ASM("r4") MSF_REQUANT_LDM_ASM("r5")                                     \
    MSF_REQUANT_LDM_ASM("r6") MSF_REQUANT_LDM_ASM("r7")                                     \
    "strb    r5, [r10, #1]\n\t"                                                            \
    "strb    r6, [r10, #2]\n\t"                                                            \
    "strb    r7, [r10, #3]\n\t"                                                            \
    "strb    r4, [r10], #4\n\t"
#endif

#endif /* MSF_DSP_ASM_H */
