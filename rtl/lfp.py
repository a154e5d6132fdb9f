"""The LFP unit: reward per unit of current, one reciprocal per post-neuron (contract §7)."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from quant.tables import recip_table, reward_tables
from rtl.arith import first_set, saturate
from rtl.factors import PostFactors
from rtl.pipeline import registered


class Reciprocal(wiring.Component):
    """`q = sat_ACC(R · RECIP[top − 2^m] >> (e + m + 1 − F))` with `d = |Z| + 1`,
    `e = ⌊log2 d⌋`: a priority encoder, a 2^m-entry table and two barrel shifters.

    A pipeline taking a current and a reward per cycle, `q` following them by `latency`
    cycles: `d`, then `e`, then the table entry, then the product, then its right shift are
    registered, so no two of the encoder, the shifters and the multiplier share a cycle."""

    latency = 5

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
        # 1: d = |Z| + 1.
        d = registered(m, (Mux(z < 0, -z, z) + 1)[: spec.acc_bits + 1], "d")
        reward = registered(m, self.reward, "reward_1")
        # 2: e, the index of d's highest set bit: the lowest of d reversed.
        _, from_top = first_set(Cat(*reversed(list(d))))
        e = registered(m, (len(d) - 1 - from_top)[: (len(d) - 1).bit_length()], "e")
        d, reward = registered(m, d, "d_2"), registered(m, reward, "reward_2")
        # 3: the table entry of d's bits below its top.
        if bits:
            down, up = Signal(range(len(d))), Signal(range(bits + 1))
            m.d.comb += [down.eq(Mux(e >= bits, e - bits, 0)), up.eq(Mux(e < bits, bits - e, 0))]
            top = ((d >> down) << up)[:bits]
            entry = Array(int(v) for v in recip_table(bits))[top]
        else:  # a one-entry table: the comparisons with 0 would be constant
            entry = Const(int(recip_table(bits)[0]))
        entry = registered(m, entry, "entry")
        e, reward = registered(m, e, "e_3"), registered(m, reward, "reward_3")
        # 4: the product, and the shift that scales it by 2^−(e + m + 1 − F).
        product = registered(m, reward * entry, "product")
        exponent = Signal(signed(len(e) + 2))
        right, left = Signal(range(len(d) + bits + 2)), Signal(range(spec.q_frac + 1))
        m.d.comb += exponent.eq(e + bits + 1 - spec.q_frac)
        m.d.sync += [
            right.eq(Mux(exponent >= 0, exponent, 0)),
            left.eq(Mux(exponent < 0, -exponent, 0)),
        ]
        # 5: the right shift; the left one (they exclude each other) and the saturation
        # follow it in the cycle the factor unit registers `q`.
        scaled, left = registered(m, product >> right, "scaled"), registered(m, left, "left_5")
        m.d.comb += self.q.eq(saturate(scaled << left, spec.acc_bits))
        return m


class LFPFactors(PostFactors):
    """One word of post factors `q_k,j`. The reward comes from the output tables (indexed by
    spike count, the label's lane reading TRUE) or, below the output, from the reward the
    layer above sent down through the Heaviside step unchanged (`valid` marks rows it
    visited; the others received none)."""

    stages = Reciprocal.latency

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
