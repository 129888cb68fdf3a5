/* Runtime test program (not a measurement of anything real): a known amount of work, a known
 * local array on the stack, and optional failure modes, selected with -D by tests/test_sim.py.
 *   MSF_TEST_ROUNDS       rounds of an integer mixing loop over the buffer
 *   MSF_TEST_STACK_WORDS  words of a local array in a leaf function; its address is published
 *   MSF_TEST_FAULT        1: illegal instruction, 2: load from MSF_TEST_UNMAPPED_ADDR,
 *                         3: msf_fatal(MSF_TEST_FATAL_CODE)
 *   MSF_TEST_HANG         never returns
 *   MSF_TEST_STATIC_BYTES extra .bss (to overflow small boards)
 */
#include "msf_arena.h"
#include "msf_generated.h"
#include "msf_runtime.h"

#ifndef MSF_TEST_ROUNDS
#define MSF_TEST_ROUNDS 4
#endif
#define MSF_TEST_FATAL_CODE 42
#ifndef MSF_TEST_STACK_WORDS
#define MSF_TEST_STACK_WORDS 64
#endif

const int8_t msf_input[MSF_INPUT_BYTES] = {1, -2, 3, -4, 5, -6, 7, -8, 9, 10, 11, 12};
volatile uint32_t msf_test_array_addr;
volatile uint32_t msf_test_data_word = 0x1234ABCDu; /* checks .data copy */
/* Read at run time so that the code is identical for every round count. */
volatile uint32_t msf_test_rounds = MSF_TEST_ROUNDS;
#ifdef MSF_TEST_STATIC_BYTES
volatile uint8_t msf_test_static[MSF_TEST_STATIC_BYTES];
#endif

__attribute__((noinline)) static uint32_t stack_user(uint32_t seed)
{
    volatile uint32_t words[MSF_TEST_STACK_WORDS];
    for (uint32_t i = 0; i < MSF_TEST_STACK_WORDS; ++i)
        words[i] = seed + i;
    msf_test_array_addr = (uint32_t)(uintptr_t)&words[0];
    return words[MSF_TEST_STACK_WORDS - 1];
}

/* `msf_test_fault_site` labels the faulting instruction so the test knows the expected PC. */
__attribute__((noinline)) static void illegal_instruction(void)
{
#if defined(__arm__)
    __asm__ volatile(".global msf_test_fault_site\nmsf_test_fault_site: .inst.n 0xde00"); /* udf #0 */
#elif defined(__riscv)
    __asm__ volatile(".global msf_test_fault_site\nmsf_test_fault_site: .word 0xc0001073"); /* unimp */
#elif defined(__XTENSA__)
    __asm__ volatile(".global msf_test_fault_site\nmsf_test_fault_site: ill");
#endif
}

const int8_t *msf_generated_run(const int8_t *input)
{
    int8_t *buf = msf_arena_claim(0u, MSF_INPUT_BYTES);
    for (uint32_t i = 0; i < MSF_INPUT_BYTES; ++i)
        buf[i] = input[i];
    uint32_t acc = msf_test_data_word;
    const uint32_t rounds = msf_test_rounds;
    for (uint32_t r = 0; r < rounds; ++r)
        for (uint32_t i = 0; i < MSF_INPUT_BYTES; ++i) {
            acc = acc * 1664525u + 1013904223u + (uint32_t)buf[i];
            buf[i] = (int8_t)(acc >> 24);
        }
    buf[0] = (int8_t)stack_user(acc);
    /* Publish the array's address in output bytes 4..7 (little endian) for the stack test. */
    for (uint32_t i = 0; i < 4u && 4u + i < MSF_INPUT_BYTES; ++i)
        buf[4u + i] = (int8_t)(msf_test_array_addr >> (8u * i));
#if defined(MSF_TEST_STATIC_BYTES)
    msf_test_static[MSF_TEST_STATIC_BYTES - 1] = (uint8_t)acc;
#endif
#if MSF_TEST_FAULT == 1
    illegal_instruction();
#elif MSF_TEST_FAULT == 3
    msf_fatal(MSF_TEST_FATAL_CODE);
#elif MSF_TEST_FAULT == 2
    buf[1] = *(volatile int8_t *)(uintptr_t)MSF_TEST_UNMAPPED_ADDR;
#endif
#ifdef MSF_TEST_HANG
    for (volatile uint32_t spin = 0;; ++spin) {
    }
#endif
    (void)illegal_instruction;
    return buf;
}
