/* Cortex-M startup: vector table at the start of flash, reset handler, fault handler. */
#include "msf_runtime.h"

extern uint32_t __stack_top[];

#define MSF_SCB_CFSR ((volatile uint32_t *)0xE000ED28u) /* Configurable Fault Status Register */
#define MSF_EXC_FRAME_PC 6u /* stacked r0-r3, r12, lr, pc, xpsr */
#define MSF_CORE_VECTORS 16u

void msf_reset(void) __attribute__((noreturn));
void msf_fault_isr(void) __attribute__((naked));

__attribute__((used, noreturn)) static void msf_fault_report(const uint32_t *frame)
{
    msf_fault(frame[MSF_EXC_FRAME_PC], *MSF_SCB_CFSR);
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

void msf_fault_isr(void)
{
    __asm__ volatile("tst lr, #4\n"
                     "ite eq\n"
                     "mrseq r0, msp\n"
                     "mrsne r0, psp\n"
                     "b msf_fault_report\n");
}

void msf_reset(void)
{
    msf_crt_init();
    main();
    msf_finish();
}
