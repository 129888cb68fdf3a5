/* Console and exit over Arm-style semihosting (Arm and RISC-V share the operation numbers). */
#include "msf_runtime.h"

#define MSF_SYS_WRITE0 0x04u
#define MSF_SYS_EXIT 0x18u
#define MSF_ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define MSF_ADP_STOPPED_RUNTIME_ERROR 0x20023u

uint32_t msf_semihost_call(uint32_t op, uintptr_t arg);

void msf_console_write0(const char *s) { msf_semihost_call(MSF_SYS_WRITE0, (uintptr_t)s); }

void msf_exit(int code)
{
    /* 32-bit SYS_EXIT takes the reason itself; the status travels in msf_result. */
    msf_semihost_call(MSF_SYS_EXIT, code == 0 ? MSF_ADP_STOPPED_APPLICATION_EXIT
                                              : MSF_ADP_STOPPED_RUNTIME_ERROR);
    for (;;) {
    }
}
