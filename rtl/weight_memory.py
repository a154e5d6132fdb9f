"""A layer's weight memory: one memory, or banks (`BANK_WORDS`) behind a registered read
address and with registered outputs.

The sequencer addresses either the same way, through a read port (`addr`, `data`) and a
write port (`addr`, `data`, a write enable per lane); only the read latency differs, one
cycle or three (`LayerGeometry.weight_latency`), and the pipelines that read weights wait
for it. The banks' read address fans out to every block RAM of the layer (45 on the MNIST
core): it leaves a register, not the readers' adders and multiplexer. Banks are memories of
their own (`weights<k>_<b>`), so each gets its own image file. A write to banks is
registered too (address, data and enables fan out as widely), so reads and writes reach
the banks a cycle late and in the order they were asked.

Their block RAMs need no read-during-write logic (`rtl.block_ram`): the update writes a
word back cycles after its one read, and the bus reads or writes one word at a time, each
answered before the next is asked.
"""

from collections.abc import Callable, Sequence

from amaranth.hdl import Array, Module, Mux, Shape, Signal, unsigned
from amaranth.lib.memory import Memory, ReadPort, WritePort

from rtl.block_ram import NO_RW_CHECK, Port, ports
from rtl.geometry import BANK_WORDS, LayerGeometry
from rtl.pipeline import registered

MakeMemory = Callable[..., Memory]


class WeightMemory:
    """Layer `layer`'s weights in words of `shape`, preloaded with `init` (else zero)."""

    def __init__(
        self,
        m: Module,
        memory: MakeMemory,
        layer: LayerGeometry,
        shape: object,
        init: Sequence,
        poison: bool = False,
    ) -> None:
        banks = layer.banks
        self.latency = layer.weight_latency
        k, lanes, width = layer.index, layer.lanes, Shape.cast(shape).width

        def block_ram(name: str, start: int, words: int) -> tuple[ReadPort | Port, WritePort]:
            mem = memory(name, shape, words, init[start : start + words], attrs=NO_RW_CHECK)
            return ports(m, mem, name, poison, granularity=1)

        if len(banks) == 1:
            self.read, self.write = block_ram(*banks[0])
            return
        bits = (BANK_WORDS - 1).bit_length()
        data = Signal(shape, name=f"weights{k}_data")
        self.read = Port(Signal(range(layer.words), name=f"weights{k}_raddr"), data)
        self.write = Port(
            Signal(range(layer.words), name=f"weights{k}_waddr"),
            Signal(shape, name=f"weights{k}_wdata"),
            Signal(lanes, name=f"weights{k}_wen"),
        )
        # Stage 1: the address is registered; 2: the banks' outputs, and which bank was
        # read; 3: both registered. A write lands at stage 1.
        at = registered(m, self.read.addr, f"weights{k}_raddr_1")
        chosen = registered(m, at[bits:], f"weights{k}_bank")
        chosen = registered(m, chosen, f"weights{k}_bank2")
        outputs = []
        for b, (name, start, words) in enumerate(banks):
            r, w = block_ram(name, start, words)
            here = self.write.addr[bits:] == b
            m.d.comb += r.addr.eq(at[:bits])
            m.d.sync += [
                w.addr.eq(self.write.addr[:bits]),
                w.data.eq(self.write.data),
                w.en.eq(Mux(here, self.write.en, 0)),
            ]
            out = Signal(unsigned(width), name=f"{name}_data")
            m.d.sync += out.eq(r.data.as_value())
            outputs.append(out)
        m.d.comb += data.eq(Array(outputs)[chosen])
