/* Firmware main (docs/contracts.md): arena init -> stack paint -> begin marker ->
 * msf_generated_run(msf_input) -> end marker -> stack scan -> result -> exit. */
#include "msf_runtime.h"
#include "msf_arena.h"
#include "msf_generated.h"

extern const int8_t msf_input[MSF_INPUT_BYTES];

/* Arena storage has its own section so the host can tell it from the runtime's static RAM. */
static uint8_t msf_arena_storage[MSF_ARENA_BYTES > 0 ? MSF_ARENA_BYTES : 4]
    __attribute__((section(".msf_arena"), aligned(8)));

int main(void)
{
    msf_arena_init(msf_arena_storage, MSF_ARENA_BYTES);
    msf_result.arena_size = MSF_ARENA_BYTES;
    msf_stack_paint();
    msf_bench_begin();
    const int8_t *out = msf_generated_run(msf_input);
    msf_bench_end();
    msf_stack_scan();
    msf_result.arena_peak = (uint32_t)msf_arena_high_water();
    msf_result.output_addr = (uint32_t)(uintptr_t)out;
    msf_result.output_bytes = MSF_OUTPUT_BYTES;
    msf_result.status = msf_stack_overflowed() ? MSF_STATUS_OVERFLOW : MSF_STATUS_OK;
    return 0;
}
