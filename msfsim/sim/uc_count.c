/* Exact instruction counting for unicorn: a UC_HOOK_BLOCK callback that adds each executed
 * block's instruction count. A block's count is decoded once from the instruction lengths
 * (Thumb-2 or RISC-V with compressed instructions) and cached by (address, size); the
 * callback also records the counts on entering the two markers and stops the emulation once
 * the instruction budget is spent. */
#include <stdint.h>
#include <stddef.h>

#define MSF_ISA_THUMB2 0
#define MSF_ISA_RISCV 1
#define MSF_UNSET UINT64_MAX
#define MSF_MAX_BLOCK_BYTES 8192u /* larger than any unicorn translation block */

typedef int (*msf_uc_emu_stop_fn)(void *uc);
typedef int (*msf_uc_mem_read_fn)(void *uc, uint64_t address, void *bytes, uint64_t size);

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
    uint64_t *keys;        /* open-addressing cache, capacity mask + 1 (power of two) */
    uint32_t *counts;
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

static uint32_t msf_block_count(msf_counter *c, uint64_t address, uint32_t size)
{
    uint64_t key = (address << 16) | (uint64_t)(size & 0xFFFFu);
    uint32_t slot = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & c->mask;
    while (c->keys[slot] != 0u) {
        if (c->keys[slot] == key)
            return c->counts[slot];
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
    if (c->used < c->mask / 2u) { /* keep the table at most half full */
        c->keys[slot] = key;
        c->counts[slot] = n;
        ++c->used;
    }
    return n;
}

void msf_uc_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    msf_counter *c = (msf_counter *)user_data;
    c->last_block = address;
    if (address == c->begin_addr && c->begin_at == MSF_UNSET)
        c->begin_at = c->total;
    else if (address == c->end_addr && c->end_at == MSF_UNSET)
        c->end_at = c->total;
    c->total += msf_block_count(c, address, size);
    if (c->total > c->budget && !c->over_budget) {
        c->over_budget = 1;
        ((msf_uc_emu_stop_fn)c->emu_stop)(uc);
    }
}
