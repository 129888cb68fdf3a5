/* Runtime test program: integer division / modulo / 64-bit multiply on every core (on lx106
 * they come from kernels_c/runtime/libgcc_lx106.c). Output: for each input pair (a, b) of
 * 32-bit words, a/b, a%b (signed), a/b, a%b (unsigned), and the low and high words of
 * (int64)a * b, as little-endian 32-bit words. */
#include "msf_arena.h"
#include "msf_generated.h"
#include "msf_runtime.h"

#define PAIRS (MSF_INPUT_BYTES / 8)
#define RESULTS_PER_PAIR 6

const int8_t msf_input[MSF_INPUT_BYTES] = {
#include "test_div_input.inc"
};

static uint32_t word(const int8_t *p)
{
    return (uint32_t)(uint8_t)p[0] | ((uint32_t)(uint8_t)p[1] << 8) | ((uint32_t)(uint8_t)p[2] << 16) |
           ((uint32_t)(uint8_t)p[3] << 24);
}

const int8_t *msf_generated_run(const int8_t *input)
{
    uint32_t *out = msf_arena_claim(0u, PAIRS * RESULTS_PER_PAIR * 4u);
    for (uint32_t i = 0; i < PAIRS; ++i) {
        volatile uint32_t ua = word(input + 8u * i), ub = word(input + 8u * i + 4u);
        volatile int32_t sa = (int32_t)ua, sb = (int32_t)ub;
        int64_t prod = (int64_t)sa * (int64_t)(volatile int64_t)sb;
        uint32_t *r = out + RESULTS_PER_PAIR * i;
        r[0] = (uint32_t)(sa / sb);
        r[1] = (uint32_t)(sa % sb);
        r[2] = ua / ub;
        r[3] = ua % ub;
        r[4] = (uint32_t)prod;
        r[5] = (uint32_t)((uint64_t)prod >> 32);
    }
    return (const int8_t *)out;
}
