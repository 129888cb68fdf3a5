/* Test firmware's stand-in for the generated header (sizes set with -D by the tests). */
#ifndef MSF_GENERATED_H
#define MSF_GENERATED_H
#include <stdint.h>
#ifndef MSF_ARENA_BYTES
#define MSF_ARENA_BYTES 4096
#endif
#ifndef MSF_INPUT_BYTES
#define MSF_INPUT_BYTES 256
#endif
#ifndef MSF_OUTPUT_BYTES
#define MSF_OUTPUT_BYTES MSF_INPUT_BYTES
#endif
const int8_t *msf_generated_run(const int8_t *input);
#endif
