/* int8 unary activation by table lookup. */
#include "msf_lut_s8.h"
#include "msf_nnsupport.h"

int32_t msf_lut_s8_get_buffer_size(const msf_lut_params *p, int32_t channels)
{
    (void)p;
    (void)channels;
    return 0;
}

void msf_lut_s8(const msf_window *in, const msf_lut_params *p, msf_window *out,
                int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int8_t *table = p->table + 128;  /* indexed by the signed input directly */
    const int32_t n = ow * out->c;         /* a row of the region is contiguous */

    for (int32_t oy = oy0; oy < oy0 + oh; oy++) {
        const int8_t *src = msf_window_pixel(in, oy, ox0);
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        for (int32_t i = 0; i < n; i++) {
            dst[i] = table[src[i]];
        }
    }
}

void msf_lut_channels_s8(const msf_window *in, const msf_lut_params *p, msf_window *out,
                         int32_t oy0, int32_t ox0, int32_t oh, int32_t ow)
{
    const int32_t ch = out->c;

    for (int32_t oy = oy0; oy < oy0 + oh; oy++) {
        const int8_t *src = msf_window_pixel(in, oy, ox0);
        int8_t *dst = msf_window_pixel(out, oy, ox0);
        for (int32_t ox = 0; ox < ow; ox++) {
            const int8_t *table = p->table + 128; /* channel 0's, indexed by the signed input */
            for (int32_t c = 0; c < ch; c++, table += MSF_LUT_SIZE) {
                *dst++ = table[*src++];
            }
        }
    }
}
