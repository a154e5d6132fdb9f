"""Block RAMs whose read of the word written in the same cycle is never used.

A read port reads every cycle, so it often reads the address the write port writes; the
core never uses such a read (each memory's user says why). Amaranth defines it (the old
word), and synthesis would keep that definition by delaying every write a cycle and
multiplexing its data into the reads: logic on the block RAM's slow output. These memories
tell synthesis that the read is free (`NO_RW_CHECK`), which maps them onto bare block RAM
ports, whose read of the address the other port writes is undefined. With `poison`, such a
read returns its word inverted: a core that still equals the golden model never used one.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib.memory import Memory, ReadPort, WritePort

NO_RW_CHECK = {"no_rw_check": 1}


@dataclass(frozen=True)
class Port:
    """A memory port as the sequencer sees it: an address and data, and for a write port
    an enable per lane."""

    addr: Signal
    data: Value
    en: Signal | None = None


def ports(
    m: Module, mem: Memory, name: str, poison: bool, granularity: int | None = None
) -> tuple[ReadPort | Port, WritePort]:
    """`mem`'s read and write port; with `poison`, the read's data inverted the cycle after
    it collided with a write."""
    r, w = mem.read_port(), mem.write_port(granularity=granularity)
    if not poison:
        return r, w
    collided = Signal(name=f"{name}_collided")
    m.d.sync += collided.eq(w.en.any() & (w.addr == r.addr))
    data = Signal(mem.shape, name=f"{name}_rdata")
    word = r.data.as_value()
    m.d.comb += data.eq(Mux(collided, ~word, word))
    return Port(r.addr, data), w
