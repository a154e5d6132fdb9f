"""The weight-update lanes: one visited word read, updated and written per cycle (§5–§7)."""

from amaranth.hdl import Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import magnitude, round_shift, saturate
from rtl.geometry import Geometry


class UpdateLanes(wiring.Component):
    """`W ← sat_W(W + round(p · A))` (DRTP) or `W ← sat_W(W + round(|W| · A · q))` (LFP),
    lane l rounding with the l-th LFSR state; for LFP also `Σ_l W_l q_l` of the old weights,
    the word's share of the reward sent to the layer below."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        self._spec, self._layer = spec, layer
        lanes = spec.lanes
        geometry = Geometry(spec)
        self._geometry = geometry
        width = spec.weight_bits + geometry.factor_bits + lanes.bit_length() + 1
        super().__init__(
            {
                "weights": In(data.ArrayLayout(signed(spec.weight_bits), lanes)),
                "factors": In(data.ArrayLayout(signed(geometry.factor_bits), lanes)),
                "activity": In(signed(geometry.layers[layer].activity_bits)),
                "random": In(data.ArrayLayout(spec.lfsr_width, lanes)),
                "next": Out(data.ArrayLayout(signed(spec.weight_bits), lanes)),
                "reward_sum": Out(signed(width)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        shift = spec.lr_shifts[self._layer]
        terms = []
        for lane in range(spec.lanes):
            w, p = self.weights[lane], self.factors[lane]
            if spec.rule == "lfp":
                product = magnitude(w) * self.activity * p
                step = shift + spec.q_frac
                terms.append(w * p)
            else:
                product = p * self.activity
                step = shift
            delta = round_shift(product, step, spec.rounding, self.random[lane])
            m.d.comb += self.next[lane].eq(saturate(w + delta, spec.weight_bits))
        if terms:
            m.d.comb += self.reward_sum.eq(sum(terms))
        return m
