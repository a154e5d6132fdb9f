/*
 * plasticore C driver: load weights, stream samples, learn, read results and counters.
 *
 * Bare-metal style: no libc beyond <stdint.h>. The spec-specific map comes from the
 * generated plasticore_regs.h (`plasticore rtl` writes it next to the Verilog). Bus access
 * goes through PLC_READ(word_address) and PLC_WRITE(word_address, value): by default
 * memory-mapped 32-bit words at PLC_BASE (define it to the core's base address); define
 * both macros to reach the core any other way (a bridge, or a simulated bus in tests).
 */
#ifndef PLASTICORE_H
#define PLASTICORE_H

#include <stdint.h>

#include "plasticore_regs.h"

#ifndef PLC_READ
#ifndef PLC_BASE
#error "define PLC_BASE (the core's byte base address) or both PLC_READ and PLC_WRITE"
#endif
#define PLC_READ(a) (((volatile uint32_t *)(uintptr_t)(PLC_BASE))[(a)])
#define PLC_WRITE(a, v) (((volatile uint32_t *)(uintptr_t)(PLC_BASE))[(a)] = (uint32_t)(v))
#endif

#define PLC_OK 0
#define PLC_ERR_IDENT (-1)   /* no plasticore core answers */
#define PLC_ERR_SPEC (-2)    /* a core built from another spec */
#define PLC_ERR_RANGE (-3)   /* an argument outside the spec's range */
#define PLC_ERR_TIMEOUT (-4) /* still busy after the poll limit */

/* PLC_OK, or why the core on the bus is not the one this header describes. */
int plc_identify(void);

/* Bus word address of weight W[layer][i][j] (i: presynaptic, j: postsynaptic). */
uint32_t plc_weight_address(uint32_t layer, uint32_t i, uint32_t j);

/* Write / read a whole layer, row-major [inputs][outputs]. */
int plc_load_layer(uint32_t layer, const int32_t *weights);
int plc_read_layer(uint32_t layer, int32_t *weights);

#if PLC_CONV
/* Bus word address of the front end's tap K[o][c][dy][dx] (write-only). */
uint32_t plc_kernel_address(uint32_t o, uint32_t c, uint32_t dy, uint32_t dx);

/* Write every tap, [PLC_CONV_OUT][PLC_CONV_IN][PLC_CONV_KERNEL][PLC_CONV_KERNEL]. */
int plc_load_kernels(const int32_t *kernels);
#endif

/* One sample of PLC_INPUTS codes: inference, then a learning step when label >= 0.
 * Polls status at most poll_limit times. The prediction, or a negative PLC_ERR_*. */
int plc_run(const uint32_t *codes, int32_t label, uint32_t poll_limit);

/* Output spike count (LIF) or activation of class c after the last sample. */
int32_t plc_output(uint32_t c);

/* Hardware counter of (PLC_PHASE_*, PLC_KIND_*), and clearing all of them. */
uint64_t plc_counter(uint32_t phase, uint32_t kind);
void plc_clear_counters(void);

#endif
