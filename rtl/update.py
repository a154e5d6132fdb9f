"""The weight-update lanes: one visited word read, updated and written per cycle (§5–§7)."""

import functools

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import magnitude, multiply, round_shift, saturate
from rtl.geometry import Geometry
from rtl.pipeline import registered


class UpdateLanes(wiring.Component):
    """`W ← sat_W(W + round(p · A))` (DRTP) or `W ← sat_W(W + round(|W| · A · q))` (LFP),
    lane l rounding with the l-th LFSR state; for LFP also `Σ_l W_l q_l` of the old weights,
    the word's share of the reward sent to the layer below.

    A pipeline taking a word per cycle: `next` and `reward_sum` follow the inputs by
    `latency` cycles. The products are registered (LFP multiplies twice, once per stage),
    then the rounded step, so that neither a multiplier nor the rounding adder sits in
    front of the weight memory's write port. DRTP's products are small: a ± below the
    output layer, shifted adds over the activity's few bits at it."""

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

    @property
    def latency(self) -> int:
        return 3 if self._spec.rule == "lfp" else 2

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        shift = spec.lr_shifts[self._layer]
        lfp = spec.rule == "lfp"

        stage = functools.partial(registered, m)
        terms = []
        for lane in range(spec.lanes):
            w, p = self.weights[lane], self.factors[lane]
            random = stage(self.random[lane], f"random{lane}_1")
            if lfp:
                scaled = stage(self.activity * p, f"scaled{lane}")  # A · q
                size = stage(magnitude(w), f"size{lane}")
                terms.append(stage(w * p, f"share{lane}"))
                w = stage(stage(w, f"w{lane}_1"), f"w{lane}_2")
                product = stage(size * scaled, f"product{lane}")
                random = stage(random, f"random{lane}_2")
                step = shift + spec.q_frac
            else:
                a = self.activity
                if self._layer < len(spec.hidden):  # p ∈ {−1, 0, 1}: a gated ± of A
                    product = Mux(p == 0, 0, Mux(p[-1], -a, a))
                else:
                    signed_a = self._geometry.layers[self._layer].signed_activity
                    product = multiply(p, a, nonnegative=not signed_a)
                product = stage(product, f"product{lane}")
                w = stage(w, f"w{lane}_1")
                step = shift
            delta = stage(round_shift(product, step, spec.rounding, random), f"delta{lane}")
            w = stage(w, f"w{lane}_last")
            m.d.comb += self.next[lane].eq(saturate(w + delta, spec.weight_bits))
        if terms:
            total = stage(sum(terms), "reward_sum_2")
            m.d.comb += self.reward_sum.eq(stage(total, "reward_sum_3"))
        return m
