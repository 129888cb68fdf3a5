/* Console and exit through the Xtensa simulator's simcall interface. */
#include "msf_runtime.h"

#define MSF_XT_SYS_EXIT 1u
#define MSF_XT_SYS_WRITE 4u
#define MSF_XT_STDOUT 1u

uint32_t msf_simcall(uint32_t op, uint32_t a, uint32_t b, uint32_t c);

void msf_console_write0(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0')
        ++n;
    msf_simcall(MSF_XT_SYS_WRITE, MSF_XT_STDOUT, (uint32_t)(uintptr_t)s, n);
}

void msf_exit(int code)
{
    msf_simcall(MSF_XT_SYS_EXIT, (uint32_t)code, 0u, 0u);
    for (;;) {
    }
}
