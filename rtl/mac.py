"""Synaptic MAC lanes: one weight word per cycle accumulated into `lanes` exact sums."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.geometry import Geometry


class MacLanes(wiring.Component):
    """`sum_j += W[i, j] · x_i` for the lanes of one word (contract §3: exact sums,
    saturated once by the neuron). Spiking inputs add the weight: no multiplier. `clear`
    restarts the sums (at the word landing with it, if `en`)."""

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

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for lane in range(self._spec.lanes):
            w = self.weights[lane]
            term = w * self.x if self._geometry.multi_bit else w
            # `clear` with `en` starts the next sum with this word: the core reads a finished
            # block's sums in the cycle the next block's first word lands.
            with m.If(self.en):
                m.d.sync += self.sums[lane].eq(Mux(self.clear, 0, self.sums[lane]) + term)
            with m.Elif(self.clear):
                m.d.sync += self.sums[lane].eq(0)
        return m
