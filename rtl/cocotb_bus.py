"""The core's Wishbone bus driven from inside a cocotb simulation.

Imported only inside a cocotb simulator process. It implements the bus interface of
`firmware.driver` (`read`, `write`, and `wait_done` on the core's `done` line, the
interrupt a real host would take), so a test, `plasticore verify` or a benchmark drives a
simulated core with the same driver, through the same register map, as a real host.
"""

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from quant.errors import BusError

CLOCK_NS = 10


class CocotbWishbone:
    """A Wishbone B4 classic initiator on the simulated core's `bus__*` ports."""

    def __init__(self, dut: object) -> None:
        self.dut = dut

    async def start(self) -> None:
        """Start the clock and hold reset for two cycles."""
        dut = self.dut
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        dut.rst.value = 1
        dut.bus__cyc.value = 0
        dut.bus__stb.value = 0
        for _ in range(2):
            await RisingEdge(dut.clk)
        await Timer(1, unit="ns")
        dut.rst.value = 0

    async def _cycle(self, address: int, write: bool, value: int = 0) -> int:
        dut = self.dut
        dut.bus__adr.value = address
        dut.bus__we.value = int(write)
        dut.bus__dat_w.value = value & 0xFFFFFFFF
        dut.bus__cyc.value = 1
        dut.bus__stb.value = 1
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if int(dut.bus__ack.value) or int(dut.bus__err.value):
                break
        error = int(dut.bus__err.value)
        data = int(dut.bus__dat_r.value)
        await Timer(1, unit="ns")
        dut.bus__cyc.value = 0
        dut.bus__stb.value = 0
        if error:
            raise BusError(f"bus error at address 0x{address:x} ({'write' if write else 'read'})")
        return data

    async def read(self, address: int) -> int:
        return await self._cycle(address, False)

    async def write(self, address: int, value: int) -> None:
        await self._cycle(address, True, value)

    async def wait_done(self) -> None:
        """Wait for the `done` pulse of the sample in flight."""
        await RisingEdge(self.dut.done)
        await Timer(1, unit="ns")
