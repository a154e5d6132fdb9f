"""The DRTP unit: post factors by label-dependent selection of a projection row (§6)."""

from amaranth.hdl import Module, Mux
from amaranth.lib.wiring import In

from quant.spec import CoreSpec
from rtl.arith import saturate, within
from rtl.factors import PostFactors
from rtl.neuron import output_of


class DRTPFactors(PostFactors):
    """One word of post factors `p_k,j`. Output layer: the error `y*_c − o_c`. Hidden layer:
    the label's projection bit (1 ↦ +1, 0 ↦ −1) gated by the boxcar derivative, so the
    update is a gated ± of the presynaptic activity: no multiplier."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        super().__init__(spec, layer, {"projection": In(spec.lanes)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        values = []
        for lane in range(spec.lanes):
            neuron = self.state[lane]
            if self.output_layer:
                top = spec.time_steps if spec.spiking else spec.activation_max
                values.append(Mux(self.is_label(lane), top, 0) - output_of(spec, neuron))
                continue
            if spec.spiking:
                bound = spec.time_steps * spec.thresholds[self._layer]
                # A bound inside the ACC range compares the same before the saturation.
                inside = bound < 1 << (spec.acc_bits - 1)
                z = neuron.z if inside else saturate(neuron.z, spec.acc_bits)
            else:
                bound = spec.activation_max
                z = neuron.z >> spec.act_shifts[self._layer]
            gate = within(z, bound)
            values.append(Mux(gate, Mux(self.projection[lane], 1, -1), 0))
        self.drive(m, values)
        return m
