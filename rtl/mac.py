"""Synaptic MAC lanes: one weight word per cycle accumulated into `lanes` exact sums."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import multiply
from rtl.geometry import Geometry


class MacLanes(wiring.Component):
    """`sum_j += W[i, j] · x_i` for the lanes of one word (contract §3: exact sums,
    saturated once by the neuron). Spiking inputs add the weight: no multiplier. `clear`
    restarts the sums at the word entering with it (or, without `en`, empties them).

    A word reaches `sums` `latency` cycles after it enters: 1 when the weight is added, 2
    when it is multiplied (by shifted adds over the event's few bits), the products being
    registered before the accumulators."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        self._spec = spec
        self._geometry = Geometry(spec).layers[layer]
        lanes, g = spec.lanes, self._geometry
        super().__init__(
            {
                "clear": In(1),
                "en": In(1),
                "weights": In(data.ArrayLayout(signed(spec.weight_bits), lanes)),
                "x": In(signed(g.event_bits)),
                "sums": Out(data.ArrayLayout(signed(g.sum_bits), lanes)),
            }
        )

    @property
    def latency(self) -> int:
        return 2 if self._geometry.multi_bit else 1

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lanes = self._spec.lanes
        en, clear = self.en, self.clear
        terms = list(self.weights)
        if self._geometry.multi_bit:
            en, clear = Signal(), Signal()
            m.d.sync += [en.eq(self.en), clear.eq(self.clear)]
            unsigned_x = not self._geometry.signed_events
            terms = []
            for lane in range(lanes):
                w = self.weights[lane]
                product = Signal(signed(len(w) + len(self.x)), name=f"product{lane}")
                m.d.sync += product.eq(multiply(w, self.x, nonnegative=unsigned_x))
                terms.append(product)
        for lane, term in enumerate(terms):
            with m.If(en):
                m.d.sync += self.sums[lane].eq(Mux(clear, 0, self.sums[lane]) + term)
            with m.Elif(clear):
                m.d.sync += self.sums[lane].eq(0)
        return m
