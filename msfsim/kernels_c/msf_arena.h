/*
 * msf_arena.h - the activation arena of msfsim.
 *
 * One arena over caller-provided storage. Buffers are claimed at offsets planned offline
 * (msfsim.fusion.memplan) or bump-allocated; the arena records the high-water mark (the
 * highest byte offset claimed), which is the arena RAM a run really needs. A claim beyond the
 * storage calls msf_fatal(MSF_FATAL_ARENA_OVERFLOW), which never returns.
 *
 * C linkage from C++ too (extern "C" guards): an Arduino sketch or a C++ application includes
 * it as it is and defines msf_fatal without `extern "C"` after including it.
 */
#ifndef MSF_ARENA_H
#define MSF_ARENA_H

#include <stdint.h>

#define MSF_ARENA_ALIGN 4u
#define MSF_FATAL_ARENA_OVERFLOW 1
#define MSF_FATAL_ARENA_MISALIGNED 2

#ifdef __cplusplus
extern "C" {
#endif

/* Provided by the firmware runtime (record and exit) or the host harness (longjmp). */
void msf_fatal(int code) __attribute__((noreturn));

void msf_arena_init(void *base, uint32_t size);
/* The buffer of `bytes` at `offset` (a multiple of MSF_ARENA_ALIGN). */
void *msf_arena_claim(uint32_t offset, uint32_t bytes);
/* The next `bytes` (rounded up to MSF_ARENA_ALIGN) after everything claimed so far. */
void *msf_arena_alloc(uint32_t bytes);
uint32_t msf_arena_high_water(void);
uint32_t msf_arena_size(void);

#ifdef __cplusplus
}
#endif

#endif /* MSF_ARENA_H */
