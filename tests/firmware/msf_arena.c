#include "msf_arena.h"
#include "msf_runtime.h"

#define MSF_TEST_ARENA_OVERFLOW 7

static uint8_t *arena_base;
static uint32_t arena_size, arena_high;

void msf_arena_init(void *base, uint32_t size)
{
    arena_base = base;
    arena_size = size;
    arena_high = 0u;
}

void *msf_arena_claim(uint32_t offset, uint32_t bytes)
{
    if (offset + bytes > arena_size)
        msf_fatal(MSF_TEST_ARENA_OVERFLOW);
    if (offset + bytes > arena_high)
        arena_high = offset + bytes;
    return arena_base + offset;
}

uint32_t msf_arena_high_water(void) { return arena_high; }
