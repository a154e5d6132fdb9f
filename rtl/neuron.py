"""Neuron datapaths: one memory word of `lanes` neurons updated per cycle (contract §3)."""

from amaranth.hdl import Module, Mux, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import clip, saturate
from rtl.geometry import Geometry


def state_layout(spec: CoreSpec, layer: int) -> data.StructLayout:
    """One neuron's state word. LIF: membrane, last spike, exact window current, spike count
    (and, for layer 1 under `intensity` encoding, the current integrated once at t = 1).
    Hard-tanh: the saturated current and the activation."""
    geometry = Geometry(spec)
    if not spec.spiking:
        return data.StructLayout({"z": signed(spec.acc_bits), "a": signed(spec.act_bits)})
    fields = {
        "v": signed(spec.membrane_bits),
        "s": 1,
        "z": signed(geometry.window_bits),
        "n": geometry.count_bits,
    }
    if layer == 0 and spec.encoding == "intensity":
        fields["i1"] = signed(spec.acc_bits)
    return data.StructLayout(fields)


def output_of(spec: CoreSpec, neuron: data.View) -> Value:
    """The neuron's output as the next layer and the host see it: its spike count (LIF) or
    its activation (hard-tanh)."""
    return neuron.n if spec.spiking else neuron.a


def word_layout(spec: CoreSpec, layer: int) -> data.ArrayLayout:
    return data.ArrayLayout(state_layout(spec, layer), spec.lanes)


class LIFLanes(wiring.Component):
    """`v ← sat_V(v − leak(v) + I − θ s_prev)`, spike if `v > θ`, window sums; `first`
    treats the stored state as zero (the start of a sample needs no clearing pass)."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        self._spec, self._layer = spec, layer
        lanes = spec.lanes
        super().__init__(
            {
                "state": In(word_layout(spec, layer)),
                "current": In(data.ArrayLayout(signed(spec.acc_bits), lanes)),
                "first": In(1),
                "real": In(lanes),
                "next": Out(word_layout(spec, layer)),
                "spikes": Out(lanes),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        theta = spec.thresholds[self._layer]
        for lane in range(spec.lanes):
            old, new, current = self.state[lane], self.next[lane], self.current[lane]
            v = Mux(self.first, 0, old.v)
            spiked = Mux(self.first, 0, old.s)
            leak = (v >> spec.leak_shift) if spec.leak_shift else 0
            v_next = saturate(v - leak + current - Mux(spiked, theta, 0), spec.membrane_bits)
            spike = (v_next > theta) & self.real[lane]
            m.d.comb += [
                new.v.eq(v_next),
                new.s.eq(spike),
                new.z.eq(Mux(self.first, 0, old.z) + current),
                new.n.eq(Mux(self.first, 0, old.n) + spike),
                self.spikes[lane].eq(spike),
            ]
            if "i1" in state_layout(spec, self._layer).members:
                m.d.comb += new.i1.eq(current)
        return m


class HardTanhLanes(wiring.Component):
    """`z = sat_ACC(Σ)`, `a = clip(z >> act_shift, −A, A)`; `active` marks nonzero outputs,
    the next layer's events."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        self._spec, self._layer = spec, layer
        lanes = spec.lanes
        sum_bits = Geometry(spec).layers[layer].sum_bits
        super().__init__(
            {
                "sums": In(data.ArrayLayout(signed(sum_bits), lanes)),
                "real": In(lanes),
                "next": Out(word_layout(spec, layer)),
                "active": Out(lanes),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        shift = spec.act_shifts[self._layer]
        for lane in range(spec.lanes):
            z = saturate(self.sums[lane], spec.acc_bits)
            a = clip(z >> shift, spec.activation_max)
            new = self.next[lane]
            m.d.comb += [
                new.z.eq(z),
                new.a.eq(a),
                self.active[lane].eq((a != 0) & self.real[lane]),
            ]
        return m
