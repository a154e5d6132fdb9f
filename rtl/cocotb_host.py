"""The host side of the bus inside a cocotb simulation: Wishbone cycles and core commands.

Imported only inside a cocotb simulator process. Everything a test, `plasticore verify` or
a benchmark does to a simulated core goes through these bus cycles, so the co-simulation
exercises the same register map a real host would.
"""

from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from quant.counters import KINDS, PHASES
from quant.spec import CoreSpec
from rtl.memory_map import COUNTER_BITS, REGISTERS, MemoryMap, counter_address

CLOCK_NS = 10


class BusError(Exception):
    """The core answered a cycle with `err`."""


def to_signed(value: int, bits: int = 32) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


class CoreHost:
    """A Wishbone initiator and the core's commands on top of it."""

    def __init__(self, dut: object, spec: CoreSpec) -> None:
        self.dut, self.spec, self.map = dut, spec, MemoryMap(spec)

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

    async def register(self, name: str) -> int:
        return await self.read(REGISTERS[name][0])

    async def set_register(self, name: str, value: int) -> None:
        await self.write(REGISTERS[name][0], value)

    async def run(self, codes: list[int], label: int | None) -> None:
        """Load one sample, start inference (and learning when `label` is given), wait."""
        for i, code in enumerate(codes):
            await self.write(self.map.input_address(i), int(code))
        if label is not None:
            await self.set_register("label", int(label))
        await self.set_register("ctrl", 1 | (2 if label is not None else 0))
        await RisingEdge(self.dut.done)
        await Timer(1, unit="ns")

    async def outputs(self) -> list[int]:
        return [
            to_signed(await self.read(self.map.output_address(c))) for c in range(self.spec.classes)
        ]

    async def counters(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for phase in PHASES:
            out[phase] = {}
            for kind in KINDS:
                low = await self.read(counter_address(phase, kind))
                high = await self.read(counter_address(phase, kind) + 1)
                out[phase][kind] = (high << 32 | low) & ((1 << COUNTER_BITS) - 1)
        return out

    async def weights(self, layer: int) -> list[list[int]]:
        n_in, n_out = self.spec.layer_sizes[layer], self.spec.layer_sizes[layer + 1]
        return [
            [to_signed(await self.read(self.map.weight_address(layer, i, j))) for j in range(n_out)]
            for i in range(n_in)
        ]
