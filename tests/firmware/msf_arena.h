/* Test stand-in for kernels_c/msf_arena.h: a bump arena with a high-water mark. Used only by
 * the runtime's own test firmwares. */
#ifndef MSF_TEST_ARENA_H
#define MSF_TEST_ARENA_H
#include <stdint.h>
void msf_arena_init(void *base, uint32_t size);
void *msf_arena_claim(uint32_t offset, uint32_t bytes);
uint32_t msf_arena_high_water(void);
#endif
