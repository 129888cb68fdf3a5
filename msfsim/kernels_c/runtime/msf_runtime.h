/* msfsim firmware runtime: markers, stack high-water, result record, exit.
 *
 * The host reads `msf_result` (a fixed layout of 32-bit words, see MSF_RESULT_*) from guest
 * memory, or from the hex report the firmware prints through semihosting before it exits.
 */
#ifndef MSF_RUNTIME_H
#define MSF_RUNTIME_H

#define MSF_RESULT_MAGIC 0x4D534652u /* "MSFR" */

/* msf_result.status */
#define MSF_STATUS_RUNNING 0u
#define MSF_STATUS_OK 1u
#define MSF_STATUS_FATAL 2u    /* msf_fatal(code) was called; code in `code` */
#define MSF_STATUS_FAULT 3u    /* CPU exception; fault_pc / fault_cause set */
#define MSF_STATUS_OVERFLOW 4u /* the stack reached the bottom of its region */

/* msf_fatal code of the startup's memory guard: the board's flash and SRAM cannot be covered
 * with the core's protection regions (or the core has none). Kernel and arena codes are below
 * 32, the emitted self-test's is 32. */
#define MSF_FATAL_MEMORY_GUARD 48

/* Bytes below the painting function's stack pointer left unpainted: covers its own frame. */
#define MSF_STACK_PAINT_MARGIN 16u
#define MSF_STACK_PAINT_WORD 0xC5A5C5A5u

/* Byte offsets into msf_result for the assembly markers (checked against the struct in
 * msf_runtime.c). */
#define MSF_RESULT_PHASE 12
#define MSF_RESULT_INSTRET_LO 52
#define MSF_RESULT_INSTRET_HI 56

#ifndef __ASSEMBLER__
#include <stdint.h>

typedef struct {
    uint32_t magic;
    uint32_t status;
    uint32_t code;         /* msf_fatal code; MSF_STATUS_FAULT: the faulting address, where
                            * fault_cause says the core recorded one (MMFAR/BFAR, mtval,
                            * EXCVADDR), else 0 */
    uint32_t phase;        /* last marker entered: 1 begin, 2 end */
    uint32_t stack_top;    /* initial stack pointer (end of SRAM) */
    uint32_t stack_bottom; /* lowest address of the stack region */
    uint32_t stack_lowest; /* lowest stack address written by the run */
    uint32_t arena_peak;   /* arena high-water mark, bytes */
    uint32_t arena_size;   /* MSF_ARENA_BYTES */
    uint32_t output_addr;  /* output buffer returned by msf_generated_run */
    uint32_t output_bytes;
    uint32_t fault_pc;
    uint32_t fault_cause;  /* arch specific: CFSR (Cortex-M), mcause (RV32), EXCCAUSE (Xtensa) */
    /* RV32 (markers_rv32.S): minstret:minstreth read first thing in each marker. The begin
     * marker leaves its raw reading here; the end marker replaces it with the difference,
     * the instructions retired from entering one marker to entering the other. 0 elsewhere. */
    uint32_t instret_lo;
    uint32_t instret_hi;
} msf_result_t;

#define MSF_RESULT_WORDS (sizeof(msf_result_t) / sizeof(uint32_t))

extern volatile msf_result_t msf_result;

/* Distinct, never-inlined markers: the host counts what retires between entering the first
 * and entering the second. */
void msf_bench_begin(void);
void msf_bench_end(void);

void msf_stack_paint(void);
void msf_stack_scan(void);
/* Non-zero when the run wrote the lowest word of the stack region. */
int msf_stack_overflowed(void);

/* Record a fatal error, report and exit: never returns. */
void msf_fatal(int code) __attribute__((noreturn));
/* CPU exception path (called by the per-core fault handlers): the faulting instruction, the
 * core's cause register and the faulting address it reports (0 if none). */
void msf_fault(uint32_t pc, uint32_t cause, uint32_t addr) __attribute__((noreturn));

/* Report the result (semihosting console) and leave the emulator. */
void msf_finish(void) __attribute__((noreturn));

/* Startup helper: copy .data, zero .bss; then the memory guard, main, msf_finish. */
void msf_crt_init(void);
/* Startup (Cortex-M: MPU, RV32: PMP, in startup_cortexm.c / crt0_rv32.S; the lx106 has
 * neither and relies on the emulator's map): from here on, an access outside the board's flash
 * and SRAM (link.ld.in: __msf_flash_*, __msf_sram_*) or a write to its flash faults. Runs
 * before main, so outside the measured interval. */
void msf_memory_guard(void);
int main(void);

/* Per-core semihosting (msf_semihost_*.{c,S}). */
void msf_console_write0(const char *s);
void msf_exit(int code) __attribute__((noreturn));

#endif /* __ASSEMBLER__ */
#endif
