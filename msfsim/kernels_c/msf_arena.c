/* msf_arena.c - planned-offset / bump arena with a high-water mark (see msf_arena.h). */
#include "msf_arena.h"

static uint8_t *arena_base;
static uint32_t arena_size;
static uint32_t arena_high_water;

static uint32_t msf_arena_round_up(uint32_t n)
{
    return (n + MSF_ARENA_ALIGN - 1u) & ~(MSF_ARENA_ALIGN - 1u);
}

void msf_arena_init(void *base, uint32_t size)
{
    arena_base = (uint8_t *)base;
    arena_size = size;
    arena_high_water = 0u;
}

void *msf_arena_claim(uint32_t offset, uint32_t bytes)
{
    if ((offset & (MSF_ARENA_ALIGN - 1u)) != 0u) {
        msf_fatal(MSF_FATAL_ARENA_MISALIGNED);
    }
    if (offset > arena_size || bytes > arena_size - offset) {
        msf_fatal(MSF_FATAL_ARENA_OVERFLOW);
    }
    const uint32_t end = msf_arena_round_up(offset + bytes);
    if (end > arena_high_water) {
        arena_high_water = end;
    }
    return arena_base + offset;
}

void *msf_arena_alloc(uint32_t bytes)
{
    return msf_arena_claim(arena_high_water, bytes);
}

uint32_t msf_arena_high_water(void)
{
    return arena_high_water;
}

uint32_t msf_arena_size(void)
{
    return arena_size;
}
