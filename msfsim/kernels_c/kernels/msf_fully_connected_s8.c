/* Fully connected layer as int32 accumulators fed consecutive runs of the flattened input. */
#include "msf_nnsupport.h"

int32_t msf_fully_connected_s8_get_buffer_size(const msf_fc_params *p)
{
    return p->out_size * (int32_t)sizeof(int32_t);
}

void msf_fully_connected_init_s8(const msf_fc_params *p, int32_t *acc)
{
    int32_t o;
    for (o = 0; o < p->out_size; o++) {
        acc[o] = p->bias ? p->bias[o] : 0;
    }
}

void msf_fully_connected_accumulate_s8(const msf_fc_params *p, const int8_t *in,
                                       int32_t offset, int32_t count, int32_t *acc)
{
    const int32_t off = p->input_offset;
    const int8_t *w_row = p->weights + offset;
    int32_t o, i;

    for (o = 0; o < p->out_size; o++) {
        const int8_t *s = in;
        const int8_t *w = w_row;
        int32_t a = acc[o];
        i = count >> 2;
        while (i-- > 0) {
            a += (s[0] + off) * w[0];
            a += (s[1] + off) * w[1];
            a += (s[2] + off) * w[2];
            a += (s[3] + off) * w[3];
            s += 4;
            w += 4;
        }
        i = count & 3;
        while (i-- > 0) {
            a += (*s++ + off) * (*w++);
        }
        acc[o] = a;
        w_row += p->in_size;
    }
}

void msf_fully_connected_finish_s8(const msf_fc_params *p, const int32_t *acc, int8_t *out)
{
    int32_t o;
    for (o = 0; o < p->out_size; o++) {
        const int32_t v = msf_requantize(acc[o], p->multiplier[o], p->shift[o]) + p->output_offset;
        out[o] = msf_clamp_s8(v, p->act_min, p->act_max);
    }
}
