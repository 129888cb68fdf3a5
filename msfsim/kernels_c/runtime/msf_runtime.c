/* Runtime shared by every core: markers, stack paint/scan, result record and report. */
#include "msf_runtime.h"

#include <stddef.h>

/* Linker script symbols (msfsim/toolchain.py writes the script from the board's memory map). */
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];

volatile msf_result_t msf_result;

void msf_crt_init(void)
{
    const uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;)
        *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;)
        *dst++ = 0u;
    msf_result.magic = MSF_RESULT_MAGIC;
    msf_result.stack_top = (uint32_t)(uintptr_t)__stack_top;
    msf_result.stack_bottom = (uint32_t)(uintptr_t)__stack_bottom;
    msf_result.stack_lowest = (uint32_t)(uintptr_t)__stack_top;
}

_Static_assert(offsetof(msf_result_t, phase) == MSF_RESULT_PHASE, "msf_result layout");
_Static_assert(offsetof(msf_result_t, instret_lo) == MSF_RESULT_INSTRET_LO, "msf_result layout");
_Static_assert(offsetof(msf_result_t, instret_hi) == MSF_RESULT_INSTRET_HI, "msf_result layout");

#if !defined(__riscv)
/* The volatile stores keep the two markers distinct (no identical-code folding). RV32 has its
 * own markers in assembly (markers_rv32.S): they also read minstret. */
__attribute__((noinline, used)) void msf_bench_begin(void) { msf_result.phase = 1u; }
__attribute__((noinline, used)) void msf_bench_end(void) { msf_result.phase = 2u; }
#endif

static inline uintptr_t msf_current_sp(void)
{
    /* The address of a local is within the current frame: close enough to SP for painting
     * with MSF_STACK_PAINT_MARGIN of slack, and portable across the cores. */
    volatile uint32_t probe = 0u;
    return (uintptr_t)&probe;
}

__attribute__((noinline)) void msf_stack_paint(void)
{
    uintptr_t limit = (msf_current_sp() - MSF_STACK_PAINT_MARGIN) & ~(uintptr_t)3u;
    for (volatile uint32_t *p = __stack_bottom; (uintptr_t)p < limit; ++p)
        *p = MSF_STACK_PAINT_WORD;
    msf_result.stack_lowest = (uint32_t)limit;
}

__attribute__((noinline)) void msf_stack_scan(void)
{
    const volatile uint32_t *p = __stack_bottom;
    const uintptr_t painted_end = msf_result.stack_lowest;
    while ((uintptr_t)p < painted_end && *p == MSF_STACK_PAINT_WORD)
        ++p;
    msf_result.stack_lowest = (uint32_t)(uintptr_t)p;
}

int msf_stack_overflowed(void)
{
    return msf_result.stack_lowest == (uint32_t)(uintptr_t)__stack_bottom;
}

/* ---- report: "MSFR w0 w1 ...\n", "MSFO <hex bytes>\n"..., "MSFE\n" ---- */

#define MSF_REPORT_LINE_BYTES 64u
static char msf_line[8u + 2u * MSF_REPORT_LINE_BYTES + 2u];

static char *msf_hex(char *out, uint32_t v, unsigned digits)
{
    static const char hexdigits[] = "0123456789abcdef";
    for (unsigned i = 0; i < digits; ++i)
        out[i] = hexdigits[(v >> (4u * (digits - 1u - i))) & 0xFu];
    return out + digits;
}

static void msf_report(void)
{
    const volatile uint32_t *words = (const volatile uint32_t *)&msf_result;
    char *p = msf_line;
    *p++ = 'M'; *p++ = 'S'; *p++ = 'F'; *p++ = 'R';
    *p = '\0';
    msf_console_write0(msf_line);
    for (uint32_t i = 0; i < MSF_RESULT_WORDS; ++i) {
        p = msf_line;
        *p++ = ' ';
        p = msf_hex(p, words[i], 8u);
        *p = '\0';
        msf_console_write0(msf_line);
    }
    msf_console_write0("\n");
    if (msf_result.status != MSF_STATUS_OK && msf_result.status != MSF_STATUS_OVERFLOW)
        return;
    const uint8_t *out = (const uint8_t *)(uintptr_t)msf_result.output_addr;
    for (uint32_t off = 0; off < msf_result.output_bytes; off += MSF_REPORT_LINE_BYTES) {
        uint32_t n = msf_result.output_bytes - off;
        if (n > MSF_REPORT_LINE_BYTES)
            n = MSF_REPORT_LINE_BYTES;
        p = msf_line;
        *p++ = 'M'; *p++ = 'S'; *p++ = 'F'; *p++ = 'O'; *p++ = ' ';
        for (uint32_t i = 0; i < n; ++i)
            p = msf_hex(p, out[off + i], 2u);
        *p++ = '\n';
        *p = '\0';
        msf_console_write0(msf_line);
    }
}

void msf_finish(void)
{
    msf_report();
    msf_console_write0("MSFE\n");
    msf_exit(msf_result.status == MSF_STATUS_OK ? 0 : 1);
}

void msf_fatal(int code)
{
    msf_result.status = MSF_STATUS_FATAL;
    msf_result.code = (uint32_t)code;
    msf_finish();
}

void msf_fault(uint32_t pc, uint32_t cause, uint32_t addr)
{
    msf_result.status = MSF_STATUS_FAULT;
    msf_result.code = addr;
    msf_result.fault_pc = pc;
    msf_result.fault_cause = cause;
    msf_finish();
}
