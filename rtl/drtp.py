"""The DRTP unit: post factors by label-dependent selection of a projection row (§6)."""

from amaranth.hdl import Cat, Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import saturate
from rtl.geometry import Geometry, address_bits
from rtl.neuron import word_layout


class DRTPFactors(wiring.Component):
    """One word of post factors `p_k,j`. Output layer: the error `y*_c − o_c`. Hidden layer:
    the label's projection bit (1 ↦ +1, 0 ↦ −1) gated by the boxcar derivative, so the
    update is a gated ± of the presynaptic activity: no multiplier."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        self._spec, self._layer = spec, layer
        lanes = spec.lanes
        geometry = Geometry(spec)
        super().__init__(
            {
                "state": In(word_layout(spec, layer)),
                "label": In(address_bits(spec.classes)),
                "block": In(address_bits(geometry.max_blocks)),
                "projection": In(lanes),
                "real": In(lanes),
                "factors": Out(data.ArrayLayout(signed(geometry.factor_bits), lanes)),
                "nonzero": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        output_layer = self._layer == len(spec.hidden)
        lanes = spec.lanes
        nonzero = []
        for lane in range(lanes):
            neuron = self.state[lane]
            if output_layer:
                top = spec.time_steps if spec.spiking else spec.activation_max
                out = neuron.n if spec.spiking else neuron.a
                is_label = self.block * lanes + lane == self.label
                p = Mux(is_label, top, 0) - out
            else:
                if spec.spiking:
                    bound = spec.time_steps * spec.thresholds[self._layer]
                    z = saturate(neuron.z, spec.acc_bits)
                else:
                    bound = spec.activation_max
                    z = neuron.z >> spec.act_shifts[self._layer]
                gate = (z > -bound) & (z < bound)
                p = Mux(gate, Mux(self.projection[lane], 1, -1), 0)
            p = Mux(self.real[lane], p, 0)
            m.d.comb += self.factors[lane].eq(p)
            nonzero.append(self.factors[lane] != 0)
        m.d.comb += self.nonzero.eq(Cat(*nonzero).any())
        return m
