/* Global average pooling as a running per-channel int32 sum fed a region at a time. */
#include "msf_nnsupport.h"

int32_t msf_global_avg_pool_s8_get_buffer_size(const msf_gap_params *p)
{
    return p->channels * (int32_t)sizeof(int32_t);
}

void msf_global_avg_pool_init_s8(const msf_gap_params *p, int32_t *sum)
{
    int32_t c;
    for (c = 0; c < p->channels; c++) {
        sum[c] = 0;
    }
}

void msf_global_avg_pool_accumulate_s8(const msf_window *in, const msf_gap_params *p,
                                       int32_t y0, int32_t x0, int32_t h, int32_t w,
                                       int32_t *sum)
{
    const int32_t ch = p->channels;
    /* the input offset of every position in the region, added once per channel */
    const int32_t region_offset = h * w * p->input_offset;
    int32_t y, x, c;

    for (c = 0; c < ch; c++) {
        sum[c] += region_offset;
    }
    if (h <= 0 || w <= 0) {
        return;
    }
    const int8_t *row = msf_window_pixel(in, y0, x0);
    for (y = 0; y < h; y++) {
        const int8_t *s = row;
        for (x = 0; x < w; x++) {
            for (c = 0; c < ch; c++) {
                sum[c] += *s++;
            }
        }
        row = msf_window_next_row(in, row);
    }
}

void msf_global_avg_pool_finish_s8(const msf_gap_params *p, const int32_t *sum, int8_t *out)
{
    int32_t c;
    for (c = 0; c < p->channels; c++) {
        const int32_t v = msf_requantize(sum[c], p->multiplier, p->shift) + p->output_offset;
        out[c] = msf_clamp_s8(v, p->act_min, p->act_max);
    }
}
