/* Memory bounds test program (tests/test_memory_bounds.py): one access at MSF_TEST_ADDR
 * inside the measured run, selected with -D:
 *   MSF_TEST_ACCESS 1  load a word; its value is published in output bytes 0..3
 *                   2  store a word (MSF_TEST_STORE_VALUE)
 *                   3  load a word and store the same value back (safe on live stack words)
 *                   4  call MSF_TEST_ADDR as a function (instruction fetch)
 *                   5  move the stack pointer to MSF_TEST_ADDR and push a word below it
 * Without MSF_TEST_ACCESS the program only copies its input. */
#include "msf_arena.h"
#include "msf_generated.h"
#include "msf_runtime.h"

#define MSF_TEST_STORE_VALUE 0xA5C3E1F0u

const int8_t msf_input[MSF_INPUT_BYTES] = {1, -2, 3, -4, 5, -6, 7, -8};

const int8_t *msf_generated_run(const int8_t *input)
{
    int8_t *buf = msf_arena_claim(0u, MSF_INPUT_BYTES);
    for (uint32_t i = 0; i < MSF_INPUT_BYTES; ++i)
        buf[i] = input[i];
#ifdef MSF_TEST_ACCESS
    volatile uint32_t *word = (volatile uint32_t *)(uintptr_t)(MSF_TEST_ADDR);
    uint32_t seen = 0u;
#if MSF_TEST_ACCESS == 1
    seen = *word;
#elif MSF_TEST_ACCESS == 2
    *word = MSF_TEST_STORE_VALUE;
#elif MSF_TEST_ACCESS == 3
    seen = *word;
    *word = seen;
#elif MSF_TEST_ACCESS == 4
#if defined(__arm__)
    ((void (*)(void))((uintptr_t)(MSF_TEST_ADDR) | 1u))(); /* Thumb */
#else
    ((void (*)(void))(uintptr_t)(MSF_TEST_ADDR))();
#endif
#elif MSF_TEST_ACCESS == 5
#if defined(__arm__)
    __asm__ volatile("mov sp, %0\n\tpush {%0}" : : "r"((uintptr_t)(MSF_TEST_ADDR)) : "memory");
#elif defined(__riscv)
    __asm__ volatile("mv sp, %0\n\taddi sp, sp, -4\n\tsw %0, 0(sp)" : : "r"((uintptr_t)(MSF_TEST_ADDR)) : "memory");
#elif defined(__XTENSA__)
    __asm__ volatile("mov a1, %0\n\taddi a1, a1, -4\n\ts32i %0, a1, 0" : : "r"((uintptr_t)(MSF_TEST_ADDR)) : "memory");
#endif
#endif
    for (uint32_t i = 0; i < 4u && i < MSF_INPUT_BYTES; ++i)
        buf[i] = (int8_t)(seen >> (8u * i));
#endif
    return buf;
}
