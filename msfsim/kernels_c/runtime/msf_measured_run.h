/* msf_measured_run.h - the measured part of a firmware's main (docs/contracts.md), shared by
 * msfsim's measurement firmware (msf_main.c) and the self-test of emitted C projects:
 * arena init -> stack paint -> begin marker -> msf_generated_run(input) -> end marker ->
 * stack scan -> arena and output figures into msf_result. Include it once per firmware, after
 * msf_runtime.h, msf_arena.h and msf_generated.h. */
#ifndef MSF_MEASURED_RUN_H
#define MSF_MEASURED_RUN_H

/* Arena storage has its own section so the host can tell it from the runtime's static RAM. */
static uint8_t msf_arena_storage[MSF_ARENA_BYTES > 0 ? MSF_ARENA_BYTES : 4]
    __attribute__((section(".msf_arena"), aligned(8)));

static inline const int8_t *msf_measured_run(const int8_t *input)
{
    msf_arena_init(msf_arena_storage, MSF_ARENA_BYTES);
    msf_result.arena_size = MSF_ARENA_BYTES;
    msf_stack_paint();
    msf_bench_begin();
    const int8_t *out = msf_generated_run(input);
    msf_bench_end();
    msf_stack_scan();
    msf_result.arena_peak = (uint32_t)msf_arena_high_water();
    msf_result.output_addr = (uint32_t)(uintptr_t)out;
    msf_result.output_bytes = MSF_OUTPUT_BYTES;
    return out;
}

#endif /* MSF_MEASURED_RUN_H */
