/* Exact instruction counting for unicorn: a UC_HOOK_BLOCK callback that adds each executed
 * block's instruction count. A block's count is decoded once from the instruction lengths
 * (Thumb-2 or RISC-V with compressed instructions) and cached by (address, size); the
 * callback also records the counts on entering the two markers and stops the emulation once
 * the instruction budget is spent.
 *
 * The callback runs once per executed block (every 7-8 guest instructions in a tight kernel
 * loop), so its common path is one table probe, one add and one compare: the cache is indexed
 * directly by the block address (blocks start on distinct halfwords, so no hash is needed) and
 * holds key and count in the same slot, and the two markers are a flag bit in the cached count
 * rather than two address compares per block. */
#include <stdint.h>
#include <stddef.h>

#define MSF_ISA_THUMB2 0
#define MSF_ISA_RISCV 1
#define MSF_UNSET UINT64_MAX
#define MSF_MAX_BLOCK_BYTES 8192u /* larger than any unicorn translation block */
#define MSF_SIZE_BITS 16u         /* key = address << MSF_SIZE_BITS | size */
#define MSF_MARKER_FLAG 0x80000000u /* in a cached count: the block starts at a marker */

#if defined(__GNUC__)
#define MSF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define MSF_UNLIKELY(x) (x)
#endif

typedef int (*msf_uc_emu_stop_fn)(void *uc);
typedef int (*msf_uc_mem_read_fn)(void *uc, uint64_t address, void *bytes, uint64_t size);

typedef struct msf_block_slot {
    uint64_t key;          /* 0: empty */
    uint32_t count;        /* instructions, | MSF_MARKER_FLAG for a marker block */
    uint32_t reserved;
} msf_block_slot;

typedef struct msf_counter {
    uint64_t total;        /* instructions of all blocks entered so far */
    uint64_t begin_at;     /* `total` on entering msf_bench_begin */
    uint64_t end_at;       /* `total` on entering msf_bench_end */
    uint64_t budget;       /* stop once `total` exceeds this */
    uint64_t begin_addr, end_addr;
    int32_t isa;
    int32_t over_budget;
    void *uc;
    void *emu_stop;
    void *mem_read;
    const uint8_t *code;   /* host copy of the flash image, for decoding */
    uint64_t code_base, code_size;
    msf_block_slot *slots; /* open-addressing cache, capacity mask + 1 (power of two) */
    uint32_t mask, used;
    uint64_t last_block;   /* address of the block entered last (fault attribution) */
} msf_counter;

static uint32_t msf_count_insns(const uint8_t *p, uint32_t size, int32_t isa)
{
    uint32_t n = 0, off = 0;
    while (off + 2u <= size) {
        uint32_t hw = (uint32_t)p[off] | ((uint32_t)p[off + 1u] << 8);
        uint32_t len;
        if (isa == MSF_ISA_THUMB2) {
            uint32_t top5 = hw >> 11; /* 0b11101, 0b11110, 0b11111 open a 32-bit encoding */
            len = (top5 == 0x1Du || top5 == 0x1Eu || top5 == 0x1Fu) ? 4u : 2u;
        } else {
            len = ((hw & 3u) != 3u) ? 2u : 4u;
        }
        off += len;
        ++n;
    }
    return n;
}

/* Halfword index: consecutive blocks land in consecutive slots. */
static inline uint32_t msf_slot_of(const msf_counter *c, uint64_t address)
{
    return (uint32_t)(address >> 1) & c->mask;
}

/* Cache miss: probe on from the home slot, decode the block and cache its count. */
static uint32_t msf_block_count_slow(msf_counter *c, uint64_t key, uint64_t address, uint32_t size)
{
    uint32_t slot = msf_slot_of(c, address);
    while (c->slots[slot].key != 0u) {
        if (c->slots[slot].key == key)
            return c->slots[slot].count;
        slot = (slot + 1u) & c->mask;
    }
    uint32_t n;
    if (address >= c->code_base && address + size <= c->code_base + c->code_size) {
        n = msf_count_insns(c->code + (address - c->code_base), size, c->isa);
    } else {
        uint8_t buf[MSF_MAX_BLOCK_BYTES];
        uint32_t len = size < MSF_MAX_BLOCK_BYTES ? size : MSF_MAX_BLOCK_BYTES;
        if (((msf_uc_mem_read_fn)c->mem_read)(c->uc, address, buf, len) != 0)
            return 0u;
        n = msf_count_insns(buf, len, c->isa);
    }
    if (address == c->begin_addr || address == c->end_addr)
        n |= MSF_MARKER_FLAG;
    if (c->used < c->mask / 2u) { /* keep the table at most half full */
        c->slots[slot].key = key;
        c->slots[slot].count = n;
        ++c->used;
    }
    return n;
}

static void msf_marker(msf_counter *c, uint64_t address)
{
    if (address == c->begin_addr && c->begin_at == MSF_UNSET)
        c->begin_at = c->total;
    else if (address == c->end_addr && c->end_at == MSF_UNSET)
        c->end_at = c->total;
}

void msf_uc_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    msf_counter *c = (msf_counter *)user_data;
    uint64_t key = (address << MSF_SIZE_BITS) | (uint64_t)(size & ((1u << MSF_SIZE_BITS) - 1u));
    const msf_block_slot *home = &c->slots[msf_slot_of(c, address)];
    uint32_t n = home->key == key ? home->count : msf_block_count_slow(c, key, address, size);
    c->last_block = address;
    if (MSF_UNLIKELY(n & MSF_MARKER_FLAG)) {
        msf_marker(c, address);
        n &= ~MSF_MARKER_FLAG;
    }
    c->total += n;
    if (MSF_UNLIKELY(c->total > c->budget) && !c->over_budget) {
        c->over_budget = 1;
        ((msf_uc_emu_stop_fn)c->emu_stop)(uc);
    }
}
