/* Test shim: the C driver's bus macros call back into the host (a simulated core). */
#include "bus_shim.h"

typedef uint32_t (*plc_read_fn)(uint32_t);
typedef void (*plc_write_fn)(uint32_t, uint32_t);

static plc_read_fn host_read;
static plc_write_fn host_write;

void plc_test_bind(plc_read_fn read, plc_write_fn write)
{
    host_read = read;
    host_write = write;
}

uint32_t plc_test_read(uint32_t address) { return host_read(address); }

void plc_test_write(uint32_t address, uint32_t value) { host_write(address, value); }
