"""What every post-factor unit shares: its ports, the label lane and the nonzero flag.

A post factor `p_k,j` (contract §5) is computed one word of L neurons per cycle from the
neuron state and the label, in a pipeline; DRTP (`rtl.drtp`) and LFP (`rtl.lfp`) differ
only in how.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import times
from rtl.geometry import Geometry, address_bits
from rtl.neuron import word_layout
from rtl.pipeline import delay_line


class PostFactors(wiring.Component):
    """Ports `state`, `label`, `block`, `real` (lanes holding a neuron), the rule's own
    inputs, and outputs `factors` and `nonzero` (some real lane has a factor)."""

    def __init__(self, spec: CoreSpec, layer: int, inputs: dict[str, In]) -> None:
        self._spec, self._layer = spec, layer
        geometry = Geometry(spec)
        super().__init__(
            {
                "state": In(word_layout(spec, layer)),
                "label": In(address_bits(spec.classes)),
                "block": In(address_bits(geometry.max_blocks)),
                "real": In(spec.lanes),
                **inputs,
                "factors": Out(data.ArrayLayout(signed(geometry.factor_bits), spec.lanes)),
                "nonzero": Out(1),
            }
        )

    @property
    def output_layer(self) -> bool:
        return self._layer == len(self._spec.hidden)

    def is_label(self, lane: int) -> Value:
        """Whether `lane` of the current block is the label's neuron."""
        return times(self.block, self._spec.lanes) + lane == self.label

    stages = 0  # the clocks a rule's values take to follow the inputs (a pipeline's depth)

    @property
    def latency(self) -> int:
        """The clocks the factors follow the inputs by: the values are registered, then
        the factors."""
        return self.stages + 2

    def drive(self, m: Module, values: list[Value]) -> None:
        """Set each lane's factor (zero on padding lanes) and the nonzero flag; `values`
        follow the inputs by `stages` clocks."""
        real = delay_line(m, "real", self.stages + 1, self._spec.lanes)
        m.d.sync += real[1].eq(self.real)
        real = real[self.stages + 1]
        for lane, value in enumerate(values):
            held = Signal(self.factors[lane].shape(), name=f"value{lane}")
            m.d.sync += [held.eq(value), self.factors[lane].eq(Mux(real[lane], held, 0))]
        m.d.comb += self.nonzero.eq(Cat(*(f != 0 for f in self.factors)).any())
