"""Hardware performance counters: the golden model's kinds and phases, counted in silicon."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from quant.counters import KINDS, PHASES
from rtl.memory_map import COUNTER_BITS

INCREMENT_BITS = 16


class PerfCounters(wiring.Component):
    """One `COUNTER_BITS` counter per (phase, kind); each adds its increment every cycle.
    Increments are registered first, so a count lags its events by a cycle and the wide
    adder does not follow the logic that forms the increment.

    `counts[(phase, kind)]` are the registers the bus reads; `clear` zeroes them all."""

    def __init__(self) -> None:
        ports = {"clear": In(1)}
        for phase in PHASES:
            for kind in KINDS:
                ports[f"inc_{phase}_{kind}"] = In(INCREMENT_BITS)
        super().__init__(ports)
        self.counts = {
            (phase, kind): Signal(COUNTER_BITS, name=f"count_{phase}_{kind}")
            for phase in PHASES
            for kind in KINDS
        }

    def increment(self, phase: str, kind: str) -> Signal:
        return getattr(self, f"inc_{phase}_{kind}")

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for (phase, kind), count in self.counts.items():
            increment = Signal(INCREMENT_BITS, name=f"inc_{phase}_{kind}_1")
            m.d.sync += increment.eq(self.increment(phase, kind))
            with m.If(self.clear):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + increment)
        return m
