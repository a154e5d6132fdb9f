"""The LFP unit: reward per unit of current, one reciprocal per post-neuron (contract §7)."""

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from quant.tables import recip_table, reward_tables
from rtl.arith import saturate
from rtl.factors import PostFactors


class Reciprocal(wiring.Component):
    """`q = sat_ACC(R · RECIP[top − 2^m] >> (e + m + 1 − F))` with `d = |Z| + 1`,
    `e = ⌊log2 d⌋`: a priority encoder, a 2^m-entry table and two barrel shifters."""

    def __init__(self, spec: CoreSpec) -> None:
        self._spec = spec
        super().__init__(
            {
                "current": In(signed(spec.acc_bits)),
                "reward": In(signed(spec.reward_bits)),
                "q": Out(signed(spec.acc_bits)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        bits = spec.recip_bits
        z = self.current
        d = Signal(spec.acc_bits + 1)
        m.d.comb += d.eq(Mux(z < 0, -z, z) + 1)
        e = Signal(range(len(d)))
        for bit in range(1, len(d)):  # the highest set bit wins: later assignments override
            with m.If(d[bit]):
                m.d.comb += e.eq(bit)
        down = Signal(range(len(d)))
        up = Signal(range(bits + 1))
        if bits:
            m.d.comb += [down.eq(Mux(e >= bits, e - bits, 0)), up.eq(Mux(e < bits, bits - e, 0))]
        else:  # a one-entry table: the comparisons with 0 would be constant
            m.d.comb += [down.eq(e), up.eq(0)]
        top = Signal(bits + 1)
        m.d.comb += top.eq((d >> down) << up)
        table = Array(int(v) for v in recip_table(bits))
        entry = table[top[:bits]] if bits else table[0]
        product = Signal(signed(spec.reward_bits + bits + 3))
        m.d.comb += product.eq(self.reward * entry)
        exponent = Signal(signed(len(e) + 2))
        m.d.comb += exponent.eq(e + bits + 1 - spec.q_frac)
        right = Signal(range(len(d) + bits + 2))
        left = Signal(range(spec.q_frac + 1))
        m.d.comb += [
            right.eq(Mux(exponent >= 0, exponent, 0)),
            left.eq(Mux(exponent < 0, -exponent, 0)),
        ]
        m.d.comb += self.q.eq(saturate((product >> right) << left, spec.acc_bits))
        return m


class LFPFactors(PostFactors):
    """One word of post factors `q_k,j`. The reward comes from the output tables (indexed by
    spike count, the label's lane reading TRUE) or, below the output, from the reward the
    layer above sent down through the Heaviside step unchanged (`valid` marks rows it
    visited; the others received none)."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        lanes = spec.lanes
        inputs = {
            "reward": In(data.ArrayLayout(signed(spec.reward_bits), lanes)),
            "valid": In(lanes),
        }
        super().__init__(spec, layer, inputs)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        true, other = (Array(int(v) for v in table) for table in reward_tables(spec))
        values = []
        for lane in range(spec.lanes):
            neuron = self.state[lane]
            unit = m.submodules[f"reciprocal{lane}"] = Reciprocal(spec)
            if self.output_layer:
                reward = Mux(self.is_label(lane), true[neuron.n], other[neuron.n])
            else:
                reward = Mux(self.valid[lane], self.reward[lane], 0)
            m.d.comb += [
                unit.current.eq(saturate(neuron.z, spec.acc_bits)),
                unit.reward.eq(reward),
            ]
            values.append(unit.q)
        self.drive(m, values)
        return m
