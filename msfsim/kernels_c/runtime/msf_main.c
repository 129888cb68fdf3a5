/* Firmware main (docs/contracts.md): the measured run (msf_measured_run.h) on msf_input, then
 * the status; the startup code reports msf_result and exits. */
#include "msf_runtime.h"
#include "msf_arena.h"
#include "msf_generated.h"
#include "msf_measured_run.h"

extern const int8_t msf_input[MSF_INPUT_BYTES];

int main(void)
{
    (void)msf_measured_run(msf_input);
    msf_result.status = msf_stack_overflowed() ? MSF_STATUS_OVERFLOW : MSF_STATUS_OK;
    return 0;
}
