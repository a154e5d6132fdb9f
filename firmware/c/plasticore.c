/* plasticore C driver; see plasticore.h. */
#include "plasticore.h"

int plc_identify(void)
{
    if (PLC_READ(PLC_REG_IDENT) != PLC_IDENT)
        return PLC_ERR_IDENT;
    if (PLC_READ(PLC_REG_SPEC_HASH) != PLC_SPEC_HASH)
        return PLC_ERR_SPEC;
    return PLC_OK;
}

uint32_t plc_weight_address(uint32_t layer, uint32_t i, uint32_t j)
{
    uint32_t word = (i << plc_block_bits[layer]) | (j / PLC_LANES);
    return plc_weights_base[layer] + ((word << PLC_LANE_BITS) | (j % PLC_LANES));
}

int plc_load_layer(uint32_t layer, const int32_t *weights)
{
    uint32_t i, j, n_out;
    if (layer >= PLC_LAYERS)
        return PLC_ERR_RANGE;
    n_out = plc_layer_outputs[layer];
    for (i = 0; i < plc_layer_inputs[layer]; i++)
        for (j = 0; j < n_out; j++)
            if (weights[i * n_out + j] < PLC_WEIGHT_MIN || weights[i * n_out + j] > PLC_WEIGHT_MAX)
                return PLC_ERR_RANGE;
    for (i = 0; i < plc_layer_inputs[layer]; i++)
        for (j = 0; j < n_out; j++)
            PLC_WRITE(plc_weight_address(layer, i, j), (uint32_t)weights[i * n_out + j]);
    return PLC_OK;
}

int plc_read_layer(uint32_t layer, int32_t *weights)
{
    uint32_t i, j, n_out;
    if (layer >= PLC_LAYERS)
        return PLC_ERR_RANGE;
    n_out = plc_layer_outputs[layer];
    for (i = 0; i < plc_layer_inputs[layer]; i++)
        for (j = 0; j < n_out; j++)
            weights[i * n_out + j] = (int32_t)PLC_READ(plc_weight_address(layer, i, j));
    return PLC_OK;
}

#if PLC_CONV
#define PLC_TAPS (PLC_CONV_OUT * PLC_CONV_IN * PLC_CONV_KERNEL * PLC_CONV_KERNEL)

uint32_t plc_kernel_address(uint32_t o, uint32_t c, uint32_t dy, uint32_t dx)
{
    uint32_t word = ((c * PLC_CONV_KERNEL + dy) * PLC_CONV_KERNEL + dx) * PLC_CONV_BLOCKS;
    word += o / PLC_LANES;
    return PLC_KERNELS_BASE + ((word << PLC_LANE_BITS) | (o % PLC_LANES));
}

int plc_load_kernels(const int32_t *kernels)
{
    uint32_t n, o, c, dy, dx;
    for (n = 0; n < PLC_TAPS; n++)
        if (kernels[n] < PLC_KERNEL_MIN || kernels[n] > PLC_KERNEL_MAX)
            return PLC_ERR_RANGE;
    n = 0;
    for (o = 0; o < PLC_CONV_OUT; o++)
        for (c = 0; c < PLC_CONV_IN; c++)
            for (dy = 0; dy < PLC_CONV_KERNEL; dy++)
                for (dx = 0; dx < PLC_CONV_KERNEL; dx++)
                    PLC_WRITE(plc_kernel_address(o, c, dy, dx), (uint32_t)kernels[n++]);
    return PLC_OK;
}
#endif

int plc_run(const uint32_t *codes, int32_t label, uint32_t poll_limit)
{
    uint32_t i, ctrl = PLC_CTRL_START;
    if (label >= (int32_t)PLC_CLASSES)
        return PLC_ERR_RANGE;
    for (i = 0; i < PLC_INPUTS; i++)
        if (codes[i] >> PLC_INPUT_BITS)
            return PLC_ERR_RANGE;
    for (i = 0; i < PLC_INPUTS; i++)
        PLC_WRITE(PLC_INPUTS_BASE + i, codes[i]);
    if (label >= 0) {
        PLC_WRITE(PLC_REG_LABEL, (uint32_t)label);
        ctrl |= PLC_CTRL_LEARN;
    }
    PLC_WRITE(PLC_REG_CTRL, ctrl);
    for (i = 0; i < poll_limit; i++)
        if (PLC_READ(PLC_REG_STATUS) & PLC_STATUS_DONE)
            return (int)PLC_READ(PLC_REG_PREDICTION);
    return PLC_ERR_TIMEOUT;
}

int32_t plc_output(uint32_t c)
{
    return (int32_t)PLC_READ(PLC_OUTPUTS_BASE + ((c / PLC_LANES) << PLC_LANE_BITS) + c % PLC_LANES);
}

uint64_t plc_counter(uint32_t phase, uint32_t kind)
{
    uint32_t address = PLC_COUNTER_BASE + 2u * (phase * PLC_KINDS + kind);
    uint64_t low = PLC_READ(address);
    uint64_t high = PLC_READ(address + 1u);
    return ((high << 32) | low) & ((1ull << PLC_COUNTER_BITS) - 1u);
}

void plc_clear_counters(void)
{
    PLC_WRITE(PLC_REG_CTRL, PLC_CTRL_CLEAR);
}
