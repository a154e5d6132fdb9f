"""Neuron datapaths: one memory word of `lanes` neurons updated per cycle (contract §3)."""

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import clip, saturate
from rtl.geometry import Geometry


def state_layout(spec: CoreSpec, layer: int | None) -> data.StructLayout:
    """One neuron's state word. LIF: membrane, last spike, exact window current, spike count
    (and, for layer 1 under `intensity` encoding, the current integrated once at t = 1).
    Hard-tanh: the saturated current and the activation. The front end's neurons
    (`layer` None) keep no window current: nothing learns from it (§3)."""
    geometry = Geometry(spec)
    if not spec.spiking:
        return data.StructLayout({"z": signed(spec.acc_bits), "a": signed(spec.act_bits)})
    fields = {"v": signed(spec.membrane_bits), "s": 1}
    if layer is not None:
        fields["z"] = signed(geometry.window_bits)
    fields["n"] = geometry.count_bits
    if layer == 0 and spec.encoding == "intensity" and not spec.conv:
        fields["i1"] = signed(spec.acc_bits)
    return data.StructLayout(fields)


def output_of(spec: CoreSpec, neuron: data.View) -> Value:
    """The neuron's output as the next layer and the host see it: its spike count (LIF) or
    its activation (hard-tanh)."""
    return neuron.n if spec.spiking else neuron.a


def word_layout(spec: CoreSpec, layer: int | None) -> data.ArrayLayout:
    return data.ArrayLayout(state_layout(spec, layer), spec.lanes)


class LIFLanes(wiring.Component):
    """`v ← sat_V(v − leak(v) + I − θ s_prev)`, spike if `v > θ`, window sums; `first`
    treats the stored state as zero (the start of a sample needs no clearing pass). Layer
    `layer`'s neurons at its threshold, or with `layer` None the front end's at θ_cv.

    Two stages, so `next` and `spikes` follow the inputs by one cycle: the first forms what
    the old state alone decides (`v − leak − θ s`, and the same less θ + 1 for the
    threshold test), the second adds the current to both, so that the saturation and the
    comparison with θ run side by side rather than one after the other. `fired` marks the
    lanes whose new count is nonzero, from the old count and the spike rather than from the
    count's adder: the learning walk's fired-lane mask."""

    def __init__(self, spec: CoreSpec, layer: int | None) -> None:
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
                "fired": Out(lanes),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        theta = spec.conv_threshold if self._layer is None else spec.thresholds[self._layer]
        # θ < 2^(V−1) − 1 (else nothing fires) and θ ≥ 1 > −2^(V−1): sat_V(u) > θ ⟺ u > θ.
        can_fire = theta < (1 << (spec.membrane_bits - 1)) - 1
        # |v − leak − θ s| < 2^V, so a current clamped to V + 2 bits leaves both the saturated
        # membrane and the threshold test as they are, and shortens the second stage's adders.
        drive_bits = base_bits = spec.membrane_bits + 2
        fields = state_layout(spec, self._layer).members
        real = Signal(spec.lanes)
        m.d.sync += real.eq(self.real)
        for lane in range(spec.lanes):
            old, new, current = self.state[lane], self.next[lane], self.current[lane]
            drive = Signal(signed(drive_bits), name=f"drive{lane}")  # the current, clamped
            base = Signal(signed(base_bits), name=f"base{lane}")  # v − leak − θ s
            over = Signal(signed(base_bits + 1), name=f"over{lane}")  # base − θ − 1
            n = Signal(fields["n"], name=f"n{lane}")  # the spike count before this step
            v = Mux(self.first, 0, old.v)
            spiked = Mux(self.first, 0, old.s)
            leak = (v >> spec.leak_shift) if spec.leak_shift else 0
            m.d.sync += [
                drive.eq(saturate(current, drive_bits)),
                base.eq(v - leak - Mux(spiked, theta, 0)),
                over.eq(v - leak - Mux(spiked, 2 * theta + 1, theta + 1)),
                n.eq(Mux(self.first, 0, old.n)),
            ]
            above = over + drive  # ≥ 0 ⟺ the membrane passes θ: its sign bit decides
            spike = ~above[-1] & real[lane] if can_fire else Const(0, 1)
            m.d.comb += [
                new.v.eq(saturate(base + drive, spec.membrane_bits)),
                new.s.eq(spike),
                new.n.eq(n + spike),
                self.spikes[lane].eq(spike),
                self.fired[lane].eq((n != 0) | spike),
            ]
            if "z" in fields:
                z = Signal(fields["z"], name=f"z{lane}")  # the window current, updated
                m.d.sync += z.eq(Mux(self.first, 0, old.z) + current)
                m.d.comb += new.z.eq(z)
            if "i1" in fields:
                stored = Signal(signed(spec.acc_bits), name=f"current{lane}")
                m.d.sync += stored.eq(current)
                m.d.comb += new.i1.eq(stored)
        return m


class HardTanhLanes(wiring.Component):
    """`z = sat_ACC(Σ)`, `a = clip(z >> act_shift, −A, A)`; `fired` marks nonzero outputs
    (the learning walk's fired-lane mask), `active` those of real lanes, the next layer's
    events. `z` is registered: outputs follow the inputs by one cycle, as the LIF lanes'
    do."""

    def __init__(self, spec: CoreSpec, layer: int) -> None:
        self._spec, self._layer = spec, layer
        lanes = spec.lanes
        sum_bits = Geometry(spec).layers[layer].sum_bits
        super().__init__(
            {
                "sums": In(data.ArrayLayout(signed(sum_bits), lanes)),
                "real": In(lanes),
                "next": Out(word_layout(spec, layer)),
                "fired": Out(lanes),
                "active": Out(lanes),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec = self._spec
        shift = spec.act_shifts[self._layer]
        real = Signal(spec.lanes)
        m.d.sync += real.eq(self.real)
        for lane in range(spec.lanes):
            z = Signal(signed(spec.acc_bits), name=f"z{lane}")
            m.d.sync += z.eq(saturate(self.sums[lane], spec.acc_bits))
            a = clip(z >> shift, spec.activation_max)
            new = self.next[lane]
            m.d.comb += [
                new.z.eq(z),
                new.a.eq(a),
                self.fired[lane].eq(a != 0),
                self.active[lane].eq(self.fired[lane] & real[lane]),
            ]
        return m
