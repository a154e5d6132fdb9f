/* Test shim: route the C driver's bus macros to host callbacks (a simulated core). */
#ifndef BUS_SHIM_H
#define BUS_SHIM_H

#include <stdint.h>

uint32_t plc_test_read(uint32_t address);
void plc_test_write(uint32_t address, uint32_t value);

#define PLC_READ(a) plc_test_read(a)
#define PLC_WRITE(a, v) plc_test_write((a), (uint32_t)(v))

#endif
