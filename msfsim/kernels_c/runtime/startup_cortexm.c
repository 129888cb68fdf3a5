/* Cortex-M startup: vector table at the start of flash, reset handler, memory guard (MPU),
 * fault handler. */
#include "msf_runtime.h"

#include <stddef.h>

extern uint32_t __stack_top[];
/* The board's flash and SRAM (link.ld.in: 32-byte aligned origins and sizes, checked there). */
extern uint32_t __msf_flash_start[], __msf_flash_end[], __msf_sram_start[], __msf_sram_end[];

#define MSF_REG(addr) ((volatile uint32_t *)(addr))
#define MSF_SCB_CFSR MSF_REG(0xE000ED28u)  /* Configurable Fault Status Register */
#define MSF_SCB_MMFAR MSF_REG(0xE000ED34u) /* MemManage Fault Address Register */
#define MSF_SCB_BFAR MSF_REG(0xE000ED38u)  /* BusFault Address Register */
#define MSF_CFSR_MMARVALID (1u << 7)
#define MSF_CFSR_BFARVALID (1u << 15)
#define MSF_EXC_FRAME_PC 6u    /* stacked r0-r3, r12, lr, pc, xpsr */
#define MSF_EXC_FRAME_WORDS 8u /* msf_fault_isr's bound below the end of SRAM: 32 bytes */
#define MSF_CORE_VECTORS 16u

/* ---- memory guard: ARMv7-M PMSAv7 MPU ----
 * Regions for the board's flash (read-only, executable) and SRAM (read-write, executable),
 * nothing else: with PRIVDEFENA = 0 there is no background map, so any other access (QEMU's
 * mps2 maps 4 MB at both origins, the real parts have other memories and peripherals there)
 * raises MemManage. MemManage is not enabled in SHCSR, so it escalates to HardFault, and with
 * HFNMIENA = 0 the HardFault handler runs with the MPU off and reports the fault. The System
 * Control Space (0xE000E000..) stays accessible whatever the MPU says. */
#define MSF_MPU_TYPE MSF_REG(0xE000ED90u)
#define MSF_MPU_CTRL MSF_REG(0xE000ED94u)
#define MSF_MPU_RNR MSF_REG(0xE000ED98u)
#define MSF_MPU_RBAR MSF_REG(0xE000ED9Cu)
#define MSF_MPU_RASR MSF_REG(0xE000EDA0u)
#define MSF_MPU_TYPE_DREGION(t) (((t) >> 8) & 0xFFu)
#define MSF_MPU_CTRL_ENABLE 1u /* HFNMIENA = 0, PRIVDEFENA = 0 */
#define MSF_MPU_MIN_LOG2 5u    /* the smallest region: 32 bytes */
#define MSF_MPU_MAX_LOG2 31u   /* the largest size a 32-bit start/end pair below 4 GB can hold */
#define MSF_RASR_ENABLE 1u
#define MSF_RASR_SIZE(log2) (((log2) - 1u) << 1) /* region of 2^(SIZE+1) bytes */
#define MSF_RASR_AP_RO (6u << 24)                /* read-only at every privilege level */
#define MSF_RASR_AP_RW (3u << 24)                /* read-write at every privilege level */
#define MSF_RASR_NORMAL_WT (2u << 16)            /* TEX 000 C 1 B 0: normal, write-through */
#define MSF_RASR_NORMAL_WB ((1u << 19) | (3u << 16)) /* TEX 001 C 1 B 1: normal, write-back */
#define MSF_FLASH_ATTRS (MSF_RASR_AP_RO | MSF_RASR_NORMAL_WT)
#define MSF_SRAM_ATTRS (MSF_RASR_AP_RW | MSF_RASR_NORMAL_WB)

_Static_assert(MSF_RASR_SIZE(MSF_MPU_MIN_LOG2) == (4u << 1), "PMSAv7: SIZE 4 is 32 bytes");
_Static_assert(4u * MSF_EXC_FRAME_WORDS == 32u, "msf_fault_isr hard-codes the frame size");

/* Cover [start, end) with naturally aligned power-of-two regions from `region` on, the largest
 * that fit first (1 MB flash: one region; 320 KB SRAM: 256 KB + 64 KB). Returns the next free
 * region; msf_fatal if the MPU has too few. */
static uint32_t msf_mpu_cover(uint32_t region, uint32_t regions, uintptr_t start, uintptr_t end,
                              uint32_t attrs)
{
    while (start < end) {
        uint32_t log2 = MSF_MPU_MAX_LOG2;
        if (start != 0u && (uint32_t)__builtin_ctz(start) < log2)
            log2 = (uint32_t)__builtin_ctz(start);
        while (((uintptr_t)1u << log2) > end - start)
            --log2;
        if (region >= regions || log2 < MSF_MPU_MIN_LOG2)
            msf_fatal(MSF_FATAL_MEMORY_GUARD);
        *MSF_MPU_RNR = region;
        *MSF_MPU_RBAR = (uint32_t)start;
        *MSF_MPU_RASR = attrs | MSF_RASR_SIZE(log2) | MSF_RASR_ENABLE;
        start += (uintptr_t)1u << log2;
        ++region;
    }
    return region;
}

void msf_memory_guard(void)
{
    const uint32_t regions = MSF_MPU_TYPE_DREGION(*MSF_MPU_TYPE);
    *MSF_MPU_CTRL = 0u;
    uint32_t next = msf_mpu_cover(0u, regions, (uintptr_t)__msf_flash_start, (uintptr_t)__msf_flash_end,
                                  MSF_FLASH_ATTRS);
    next = msf_mpu_cover(next, regions, (uintptr_t)__msf_sram_start, (uintptr_t)__msf_sram_end,
                         MSF_SRAM_ATTRS);
    for (; next < regions; ++next) { /* whatever a previous program left */
        *MSF_MPU_RNR = next;
        *MSF_MPU_RASR = 0u;
    }
    *MSF_MPU_CTRL = MSF_MPU_CTRL_ENABLE;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    if ((*MSF_MPU_CTRL & MSF_MPU_CTRL_ENABLE) == 0u) /* no MPU: RAZ/WI */
        msf_fatal(MSF_FATAL_MEMORY_GUARD);
}

void msf_reset(void) __attribute__((noreturn));
void msf_fault_isr(void) __attribute__((naked));

/* `frame`: the exception frame, NULL if it was not in SRAM (see msf_fault_isr). */
__attribute__((used, noreturn)) static void msf_fault_report(const uint32_t *frame)
{
    const uint32_t cfsr = *MSF_SCB_CFSR;
    uint32_t addr = 0u;
    if (cfsr & MSF_CFSR_MMARVALID)
        addr = *MSF_SCB_MMFAR;
    else if (cfsr & MSF_CFSR_BFARVALID)
        addr = *MSF_SCB_BFAR;
    msf_fault(frame != NULL ? frame[MSF_EXC_FRAME_PC] : 0u, cfsr, addr);
}

/* Only the core exceptions: the firmware enables no interrupt. */
__attribute__((section(".vectors"), used)) void (*const msf_vectors[MSF_CORE_VECTORS])(void) = {
    (void (*)(void))(uintptr_t)__stack_top,
    msf_reset,
    msf_fault_isr, /* NMI */
    msf_fault_isr, /* HardFault */
    msf_fault_isr, /* MemManage */
    msf_fault_isr, /* BusFault */
    msf_fault_isr, /* UsageFault */
    0, 0, 0, 0,
    msf_fault_isr, /* SVCall */
    msf_fault_isr, /* DebugMon */
    0,
    msf_fault_isr, /* PendSV */
    msf_fault_isr, /* SysTick */
};

/* r0 = the exception frame. If the stack pointer had left SRAM, the frame is not read and the
 * handler starts a fresh stack at the top of SRAM rather than fault again (a lockup would
 * only end at the host's timeout). */
void msf_fault_isr(void)
{
    __asm__ volatile("tst lr, #4\n"
                     "ite eq\n"
                     "mrseq r0, msp\n"
                     "mrsne r0, psp\n"
                     "ldr r1, =__msf_sram_start\n"
                     "ldr r2, =__msf_sram_end - 32\n" /* 4 * MSF_EXC_FRAME_WORDS */
                     "cmp r0, r1\n"
                     "blo 1f\n"
                     "cmp r0, r2\n"
                     "bls 2f\n"
                     "1:\n"
                     "ldr r1, =__stack_top\n"
                     "msr msp, r1\n"
                     "movs r0, #0\n"
                     "2:\n"
                     "b msf_fault_report\n");
}

void msf_reset(void)
{
    msf_crt_init();
    msf_memory_guard();
    main();
    msf_finish();
}
