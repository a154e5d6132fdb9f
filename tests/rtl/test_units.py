# amaranth: UnusedElaboratable=no
"""Unit benches: each RTL unit, simulated alone, equals the golden model's function for it.

The whole-core co-simulation (`test_core.py`) proves the core on the samples it runs; these
benches drive one unit straight at its edges (saturation at the membrane, current and weight
bounds, zero activity, every label, negative values, padding lanes, stochastic-rounding
draws) for the shipped specs and random ones, so that a disagreement names the unit and its
operands. Each compares exactly with the function that `GoldenCore` itself calls.

(The first line keeps Amaranth from warning about the core that the DRTP bench elaborates
only to read its projection ROM.)
"""

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Cat, Fragment, Module, Mux, Shape, Signal, signed
from amaranth.lib import data
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator, SimulatorContext

from firmware.driver import to_signed
from quant.fixed import ROUNDINGS
from quant.lfsr import LFSRStream, draws
from quant.spec import CoreSpec, load_spec
from quant.tables import projection_rom, projection_seed, recip_table, reward_tables, rounding_lfsr
from rtl.arith import lfsr_states, within
from rtl.core import LearningCore
from rtl.drtp import DRTPFactors
from rtl.geometry import Geometry
from rtl.lfp import LFPFactors, Reciprocal
from rtl.mac import MacLanes
from rtl.neuron import HardTanhLanes, LIFLanes, state_layout
from rtl.update import UpdateLanes
from rtl.weight_memory import WeightMemory
from sim.chip.golden import (
    LIFState,
    conv_step,
    drtp_hidden_factor,
    drtp_output_factor,
    hardtanh,
    lfp_output_reward,
    lif_step,
    reciprocal_scaled,
    synaptic_sums,
    weight_update,
)

from .random_specs import banked_spec, random_specs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DIGITS, MNIST, DIGITS_CONV = (
    load_spec(CONFIGS / f"{name}.toml") for name in ("digits", "mnist", "digits_conv")
)
# Both shipped cores learn by DRTP; the LFP units run on the digits core switched to LFP.
DIGITS_LFP = replace(DIGITS, name="digits_lfp", rule="lfp")

# MNIST differs from digits only in its input count and first threshold: it runs where a
# unit sees them (MAC, LIF, DRTP gate).
LFSR_SPECS = [DIGITS, *(random_specs(1, lambda s, w=w: s.lfsr_width == w)[0] for w in (8, 16, 24))]
MAC_SPECS = [
    DIGITS,
    MNIST,
    *random_specs(3, lambda s: s.spiking),
    *random_specs(2, lambda s: not s.spiking),
]
LIF_SPECS = [DIGITS, MNIST, *random_specs(4, lambda s: s.spiking)]
# The front end's neurons: the shipped conv core, and with a leak and narrower membranes.
CONV_SPECS = [
    DIGITS_CONV,
    replace(
        DIGITS_CONV,
        name="conv_leaky",
        leak_shift=2,
        membrane_bits=12,
        thresholds=(800,),
        conv_threshold=90,
    ),
]
HARDTANH_SPECS = random_specs(3, lambda s: not s.spiking)
DRTP_SPECS = [DIGITS, MNIST, *random_specs(5, lambda s: s.rule == "drtp" and bool(s.hidden))]
LFP_SPECS = [
    DIGITS_LFP,
    replace(DIGITS_LFP, name="digits_lfp_recip8", recip_bits=8),
    *random_specs(4, lambda s: s.rule == "lfp"),
]
UPDATE_SPECS = [
    DIGITS,
    DIGITS_LFP,
    *random_specs(4, lambda s: s.rule != "none"),
    *random_specs(1, lambda s: s.rule == "drtp" and 0 in s.lr_shifts),  # no shift to round
    *random_specs(1, lambda s: s.rule == "lfp" and s.lfsr_width == 8),  # shifts past the LFSR
]

Bench = Callable[[SimulatorContext], Awaitable[None]]


def _name(spec: CoreSpec) -> str:
    return spec.name


def _rng(spec: CoreSpec) -> np.random.Generator:
    """Draws seeded by the spec's name: reproducible, and different for each spec."""
    return np.random.default_rng(list(spec.name.encode()))


def _simulate(dut: object, bench: Bench, clocked: bool = False) -> None:
    """Run `bench` on `dut`; a clock only where the unit has registers."""
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _comb(dut: object, vectors: list[dict[str, object]], outputs: tuple[str, ...]) -> list:
    """Drive each vector's ports (by name) of a combinational unit and read `outputs`."""
    results = []

    async def bench(ctx: SimulatorContext) -> None:
        for vector in vectors:
            for port, value in vector.items():
                ctx.set(getattr(dut, port), value)
            results.append({port: ctx.get(getattr(dut, port)) for port in outputs})

    _simulate(dut, bench)
    return results


def _clocked(
    dut: object, vectors: list[dict[str, object]], outputs: tuple[str, ...], latency: int = 1
) -> list:
    """As `_comb`, for a pipelined unit: a vector enters each clock, as the core streams
    words, and its outputs are read `latency` clocks later, so a stage that took a later
    vector's input instead of its own registered copy shows."""
    results = []

    async def bench(ctx: SimulatorContext) -> None:
        read = []
        for vector in vectors:
            for port, value in vector.items():
                ctx.set(getattr(dut, port), value)
            await ctx.tick()
            read.append({port: ctx.get(getattr(dut, port)) for port in outputs})
        for _ in range(latency - 1):
            await ctx.tick()
            read.append({port: ctx.get(getattr(dut, port)) for port in outputs})
        results.extend(read[latency - 1 :])

    _simulate(dut, bench, clocked=True)
    return results


def _draw(
    rng: np.random.Generator, low: int, high: int, size: int | tuple, near: tuple = ()
) -> np.ndarray:
    """Integers in [low, high] (low ≤ 0 ≤ high) with magnitudes spread over every bit
    length, a third of them replaced by the edges that saturations and comparisons turn on:
    both bounds, 0 and each of `near`, each ±1."""
    top = max(high, -low)
    magnitude = rng.integers(0, 1 << rng.integers(0, top.bit_length() + 1, size))
    sign = rng.choice([-1, 1], size) if low < 0 else 1
    values = np.clip(sign * magnitude, low, high)
    edges = [v + d for v in (low, high, 0, *near) for d in (-1, 0, 1)]
    edges = [e for e in edges if low <= e <= high]
    pick = rng.random(size) < 1 / 3
    values[pick] = rng.choice(edges, int(pick.sum()))
    return values


def _span(shape: object) -> tuple[int, int]:
    """The integers a port of `shape` holds."""
    shape = Shape.cast(shape)
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def _event_range(spec: CoreSpec, k: int) -> tuple[int, int]:
    """What an event `x_k,i,t` into layer k can be (contract §2–§3)."""
    if k > 0:
        return (0, 1) if spec.spiking else (-spec.activation_max, spec.activation_max)
    return (0, (1 << spec.input_bits) - 1) if spec.encoding == "intensity" else (0, 1)


def _activity_range(spec: CoreSpec, k: int) -> tuple[int, int]:
    """What a window activity `A_k,i` can be: T events (hard-tanh has T = 1)."""
    low, high = _event_range(spec, k)
    return low * spec.time_steps, high * spec.time_steps


def _neurons(spec: CoreSpec, k: int, rng: np.random.Generator, **fields: np.ndarray) -> list:
    """One state word of layer k: `fields` per lane, every other field random within its
    width (the unit must ignore it)."""
    values = {
        name: fields[name] if name in fields else _draw(rng, *_span(shape), spec.lanes)
        for name, shape in state_layout(spec, k).members.items()
    }
    return [{name: int(v[lane]) for name, v in values.items()} for lane in range(spec.lanes)]


def _words(spec: CoreSpec, k: int, rng: np.random.Generator, **fields: np.ndarray) -> list:
    """Layer k's neuron state as words, block by block: `fields` per neuron, padding lanes
    and every other field random within their widths."""
    members = state_layout(spec, k).members
    padded = {
        name: _blocked(spec, values, _draw(rng, *_span(members[name]), len(values) + spec.lanes))
        for name, values in fields.items()
    }
    blocks = spec.blocks(spec.layer_sizes[k + 1])
    return [_neurons(spec, k, rng, **{n: v[b] for n, v in padded.items()}) for b in range(blocks)]


def _blocked(spec: CoreSpec, values: np.ndarray, fill: np.ndarray | None = None) -> np.ndarray:
    """Per-neuron `values` as `[blocks, lanes]` words, padding lanes from `fill` (else 0)."""
    words = np.zeros(spec.blocks(len(values)) * spec.lanes, dtype=np.int64)
    if fill is not None:
        words[:] = fill[: len(words)]
    words[: len(values)] = values
    return words.reshape(-1, spec.lanes)


def _real_mask(spec: CoreSpec, k: int, block: int) -> int:
    """The lanes of `block` of layer k that hold a neuron."""
    return (1 << Geometry(spec).layers[k].real_lanes(block)) - 1


def _lanes(word: data.Const, field: str | None = None) -> np.ndarray:
    """A word read back, one integer per lane (of `field` for neuron state)."""
    return np.array([int(lane if field is None else lane[field]) for lane in word])


def _bits(value: int, lanes: int) -> np.ndarray:
    """A one-bit-per-lane port's value, lane 0 first."""
    return (value >> np.arange(lanes)) & 1


def _expect(got: object, want: object, where: str, **operands: object) -> None:
    """Exact equality; on failure the message names the unit, the spec and the operands."""
    got, want = np.asarray(got), np.asarray(want)
    shown = {name: np.asarray(v).tolist() for name, v in operands.items()}
    assert np.array_equal(got, want), (
        f"{where}: RTL {got.tolist()} != golden {want.tolist()}, {shown}"
    )


def _expect_each(got: np.ndarray, want: np.ndarray, where: str, **operands: np.ndarray) -> None:
    """Element-wise exact equality over a batch; a failure shows the first bad element."""
    bad = np.flatnonzero(np.asarray(got) != np.asarray(want))
    if len(bad):
        i = bad[0]
        shown = {name: v[i] for name, v in operands.items()}
        pytest.fail(f"{where}: RTL {got[i]} != golden {want[i]} for {shown} ({len(bad)} bad)")


# -- LFSR --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", LFSR_SPECS, ids=_name)
def test_lfsr_states_continue_the_software_sequence(spec: CoreSpec) -> None:
    """`lfsr_states` unrolls `quant.lfsr.step`: the L states one cycle draws, and the
    register advanced to the last of them, continue the golden sequence from any seed."""
    width, lanes, cycles = spec.lfsr_width, spec.lanes, 6
    m = Module()
    state = Signal(width)
    states = lfsr_states(m, state, width, lanes, "draw")
    m.d.sync += state.eq(states[-1])
    edge_seeds = (1, 1 << (width - 1), (1 << width) - 1)
    seeds = list(dict.fromkeys((spec.seed, *edge_seeds, projection_seed(spec, 0, 1))))
    got: dict[int, list[int]] = {seed: [] for seed in seeds}

    async def bench(ctx: SimulatorContext) -> None:
        for seed in seeds:
            ctx.set(state, seed)
            for _ in range(cycles):
                got[seed] += [ctx.get(s) for s in states]
                await ctx.tick()

    _simulate(m, bench, clocked=True)
    for seed in seeds:
        want, _ = draws(replace(rounding_lfsr(spec), seed=seed), lanes * cycles)
        _expect(got[seed], want, f"{spec.name}: LFSR", seed=seed)


@pytest.mark.parametrize("bound", [1, 2, 3, 100, 127, 128, 255, 511])
def test_within_is_the_open_interval(bound: int) -> None:
    """`within(value, bound)`, split at the bits of `bound`, is `−bound < value < bound`
    for every 10-bit value."""
    value = Signal(signed(10))
    m = Module()
    inside = Signal()
    m.d.comb += inside.eq(within(value, bound))
    values = range(-512, 512)
    got = []

    async def bench(ctx: SimulatorContext) -> None:
        for v in values:
            ctx.set(value, v)
            got.append(ctx.get(inside))

    _simulate(m, bench)
    _expect(got, [int(-bound < v < bound) for v in values], f"within ±{bound}")


# -- MAC lanes ---------------------------------------------------------------------------


def _mac_sums(spec: CoreSpec, k: int, cases: list[tuple[np.ndarray, np.ndarray]]) -> list:
    """Clear, then one weight word per event as the core streams them; the sums once the
    last word has passed the MAC's latency."""
    dut = MacLanes(spec, k)
    sums = []

    async def bench(ctx: SimulatorContext) -> None:
        for x, w in cases:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            ctx.set(dut.en, 1)
            for i in np.flatnonzero(x):
                ctx.set(dut.weights, w[i].tolist())
                ctx.set(dut.x, int(x[i]))
                await ctx.tick()
            ctx.set(dut.en, 0)
            for _ in range(dut.latency - 1):  # the last word's product reaches the sums
                await ctx.tick()
            sums.append(_lanes(ctx.get(dut.sums)))

    _simulate(dut, bench, clocked=True)
    return sums


@pytest.mark.parametrize("spec", MAC_SPECS, ids=_name)
def test_mac_lanes_sum_exactly(spec: CoreSpec) -> None:
    """The MAC lanes form `Σ_i W[i, j] x_i` over a layer's events exactly, as the golden
    `synaptic_sums` does before the neuron's one saturation: spikes add the weight,
    multi-bit events (negative for hard-tanh) multiply it, and `clear` starts a new sum."""
    rng = _rng(spec)
    lanes, w_low, w_high = spec.lanes, spec.weight.min_int, spec.weight.max_int
    for k, layer in enumerate(Geometry(spec).layers):
        low, high = _event_range(spec, k)
        n = layer.n_in
        cases = [
            (
                _draw(rng, low, high, n) * (rng.random(n) < density),
                _draw(rng, w_low, w_high, (n, lanes)),
            )
            for density in (0.5, 0.0, 0.1, 0.9, 1.0)  # after a sum, one with no events
        ]
        cases += [
            (np.full(n, high), np.full((n, lanes), w_low)),  # the most negative sum
            (np.full(n, high), np.full((n, lanes), w_high)),
            (np.full(n, low), np.full((n, lanes), w_low)),  # hard-tanh: the most positive
        ]
        for (x, w), got in zip(cases, _mac_sums(spec, k, cases), strict=True):
            want, _ = synaptic_sums(spec, k, w, x)
            _expect(got, want, f"{spec.name}: MAC layer {k}", x=x, weights=w)


# -- neurons -----------------------------------------------------------------------------


def _theta(spec: CoreSpec, k: int | None) -> int:
    """The threshold of LIF layer k, or of the front end's neurons (k None)."""
    return spec.conv_threshold if k is None else spec.thresholds[k]


def _golden_step(spec: CoreSpec, k: int | None, state: LIFState, current: np.ndarray) -> LIFState:
    return conv_step(spec, state, current) if k is None else lif_step(spec, k, state, current)


def _lif_vectors(spec: CoreSpec, k: int | None, rng: np.random.Generator) -> list[dict]:
    """Independent steps of LIF layer k (None: the front end): states and currents spread
    over their ranges and around ±θ, a fifth of them starting a window (`first`), random
    padding lanes; the first three at the corners: the membrane saturating high and low,
    and landing on θ (no spike)."""
    lanes, steps, acc, membrane = spec.lanes, spec.time_steps, spec.accumulator, spec.membrane
    theta = _theta(spec, k)
    window = (steps - 1) * (acc.max_int + 1)  # the window current before the last step
    vectors = []
    for _ in range(40):
        fields = {
            "v": _draw(rng, membrane.min_int, membrane.max_int, lanes, near=(theta, -theta)),
            "s": rng.integers(0, 2, lanes),
            "z": _draw(rng, -window, window, lanes),
            "n": rng.integers(0, steps, lanes),
        }
        current = _draw(rng, acc.min_int, acc.max_int, lanes, near=(theta, 2 * theta))
        vectors.append(
            {
                "state": _neurons(spec, k, rng, **fields),
                "current": current.tolist(),
                "first": int(rng.random() < 0.2),
                "real": (1 << int(rng.integers(1, lanes + 1))) - 1,
            }
        )
    corners = [
        (membrane.max_int, 0, acc.max_int),
        (membrane.min_int, 1, acc.min_int),
        (0, 0, theta),
    ]
    for vector, (v, s, current) in zip(vectors, corners, strict=False):
        vector.update(first=0, current=[current] * lanes)
        for lane in vector["state"]:
            lane.update(v=v, s=s)
    return vectors


def _lif_run(spec: CoreSpec, k: int | None, vectors: list[dict], windows: np.ndarray) -> tuple:
    """The LIF lanes on independent `vectors`, then on whole windows of currents
    `[window, T, lanes]` with each lane's next state fed back as its state, as the core's
    state memory does: `(next, spikes, fired)` per vector, `next` per window step. The lanes'
    outputs follow their inputs by a clock."""
    dut = LIFLanes(spec, k)
    single, fed = [], []

    async def bench(ctx: SimulatorContext) -> None:
        for vector in vectors:
            for port, value in vector.items():
                ctx.set(getattr(dut, port), value)
            await ctx.tick()
            single.append((ctx.get(dut.next), ctx.get(dut.spikes), ctx.get(dut.fired)))
        ctx.set(dut.real, (1 << spec.lanes) - 1)
        for window in windows:
            for t, current in enumerate(window):
                ctx.set(dut.first, int(t == 0))
                ctx.set(dut.current, current.tolist())
                await ctx.tick()
                fed.append(ctx.get(dut.next))
                ctx.set(dut.state, fed[-1])

    _simulate(dut, bench, clocked=True)
    return single, fed


def _lif_state(word: list | data.Const, fields: tuple[str, ...] = LIFState._fields) -> LIFState:
    """The LIF fields of a state word, driven (dicts) or read back; a field the word lacks
    (`fields` says which it has: the front end keeps no window current) reads 0."""
    return LIFState(
        *(np.array([int(lane[f]) if f in fields else 0 for lane in word]) for f in LIFState._fields)
    )


@pytest.mark.parametrize("spec", LIF_SPECS + CONV_SPECS, ids=_name)
def test_lif_lanes_step_like_golden(spec: CoreSpec) -> None:
    """A LIF lane's step equals `lif_step` (the front end's: `conv_step`, at θ_cv, no window
    current): membrane saturation at both bounds, the leak's floor on negative membranes,
    the reset one step after a spike, firing strictly above θ, `first` starting from rest,
    no spike on a padding lane, `fired` on a nonzero new count; and whole windows with the
    state fed back equal the step iterated from rest."""
    rng = _rng(spec)
    lanes, membrane = spec.lanes, spec.membrane
    reached = set()
    groups = [None] if spec.conv else list(range(len(spec.layer_sizes) - 1))
    for k in groups:
        theta = _theta(spec, k)
        fields = tuple(state_layout(spec, k).members)
        vectors = _lif_vectors(spec, k, rng)
        top = min(3 * theta, spec.accumulator.max_int)
        windows = _draw(rng, -2 * theta, top, (3, spec.time_steps, lanes), near=(theta,))
        single, fed = _lif_run(spec, k, vectors, windows)
        for vector, (nxt, spikes, fired) in zip(vectors, single, strict=True):
            current = np.array(vector["current"])
            start = _lif_state(vector["state"], fields)
            before = LIFState.rest(lanes) if vector["first"] else start
            want = _golden_step(spec, k, before, current)
            got = _lif_state(nxt, fields)
            real = np.arange(lanes) < vector["real"].bit_length()
            where = f"{spec.name}: LIF " + ("front end" if k is None else f"layer {k}")
            operands = {"state": start, "current": current, "first": vector["first"]}
            _expect(got.v, want.v, f"{where} membrane", **operands)
            _expect(got.z, want.z, f"{where} window current", **operands)
            _expect(got.s[real], want.s[real], f"{where} spike", **operands)
            _expect(got.n[real], want.n[real], f"{where} count", **operands)
            _expect(_bits(spikes, lanes), want.s * real, f"{where} spike out", **operands)
            _expect(_bits(fired, lanes), got.n != 0, f"{where} fired", **operands)
            if "i1" in state_layout(spec, k).members:
                _expect(_lanes(nxt, "i1"), current, f"{where} stored current", **operands)
            reached |= {"high"} if (want.v == membrane.max_int).any() else set()
            reached |= {"low"} if (want.v == membrane.min_int).any() else set()
        fed_steps = iter(fed)
        for window in windows:
            state = LIFState.rest(lanes)
            for t, current in enumerate(window):
                state = _golden_step(spec, k, state, current)
                got = _lif_state(next(fed_steps), fields)
                for field, value in zip(LIFState._fields, state, strict=True):
                    where = f"{spec.name}: LIF layer {k} window step {t}, {field}"
                    _expect(getattr(got, field), value, where, currents=window)
    assert reached == {"high", "low"}, reached


@pytest.mark.parametrize("spec", HARDTANH_SPECS, ids=_name)
def test_hardtanh_lanes_like_golden(spec: CoreSpec) -> None:
    """`z = sat_ACC(Σ)` and `a = hardtanh(z)` per lane at the current's bounds and at the
    edges of the clip; `fired` marks nonzero activations and `active`, the next layer's
    events, those of real lanes only."""
    rng = _rng(spec)
    lanes, acc, top = spec.lanes, spec.accumulator, spec.activation_max
    for k, layer in enumerate(Geometry(spec).layers):
        edge = top << spec.act_shifts[k]
        near = (acc.max_int, acc.min_int, edge, -edge, (1 - top) << spec.act_shifts[k])
        low, high = _span(signed(layer.sum_bits))
        vectors = [
            {
                "sums": _draw(rng, low, high, lanes, near=near).tolist(),
                "real": (1 << int(rng.integers(1, lanes + 1))) - 1,
            }
            for _ in range(60)
        ]
        outputs = _clocked(HardTanhLanes(spec, k), vectors, ("next", "fired", "active"))
        for vector, out in zip(vectors, outputs, strict=True):
            z = acc.saturate(vector["sums"])
            a = hardtanh(spec, k, z)
            real = np.arange(lanes) < vector["real"].bit_length()
            where = f"{spec.name}: hard-tanh layer {k}"
            _expect(_lanes(out["next"], "z"), z, f"{where} current", sums=vector["sums"])
            _expect(_lanes(out["next"], "a"), a, f"{where} activation", sums=vector["sums"])
            _expect(_bits(out["fired"], lanes), a != 0, f"{where} fired", a=a)
            _expect(_bits(out["active"], lanes), (a != 0) & real, f"{where} active", a=a, real=real)


# -- DRTP factors ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", DRTP_SPECS, ids=_name)
def test_drtp_output_factors_are_the_error(spec: CoreSpec) -> None:
    """The output layer's DRTP factor is `drtp_output_factor`, `y* − o`, for every label
    and block, silent, on target or anywhere in range; padding lanes give 0 and `nonzero`
    says whether the block holds a factor."""
    rng = _rng(spec)
    last = len(spec.hidden)
    top = spec.time_steps if spec.spiking else spec.activation_max
    low, field = (0, "n") if spec.spiking else (-top, "a")
    vectors, wants = [], []
    for label in range(spec.classes):
        on_target = np.zeros(spec.classes, dtype=np.int64)
        on_target[label] = top
        silent = np.zeros_like(on_target)
        for output in (silent, on_target, *(_draw(rng, low, top, spec.classes) for _ in range(2))):
            want = _blocked(spec, drtp_output_factor(spec, output, label))
            for block, word in enumerate(_words(spec, last, rng, **{field: output})):
                real = _real_mask(spec, last, block)
                vectors.append({"state": word, "label": label, "block": block, "real": real})
                wants.append((output, want[block]))
    dut = DRTPFactors(spec, last)
    outputs = _clocked(dut, vectors, ("factors", "nonzero"), dut.latency)
    for vector, (output, want), out in zip(vectors, wants, outputs, strict=True):
        where = f"{spec.name}: DRTP output, label {vector['label']} block {vector['block']}"
        _expect(_lanes(out["factors"]), want, where, output=output)
        _expect(out["nonzero"], want.any(), f"{where} nonzero", output=output)


def _drtp_hidden(spec: CoreSpec, k: int, cases: list[tuple[int, list]]) -> list:
    """DRTPFactors of hidden layer k fed its projection bits both ways the core can: the
    label's words of the core's own ROM, then bit 0 of the states an LFSR seeded with the
    label's seed draws, L per block. Per case `(label, words)`, the `(factors, nonzero)` of
    every block, ROM first."""
    dut = DRTPFactors(spec, k)
    lanes, width = spec.lanes, spec.lfsr_width
    blocks = spec.blocks(spec.hidden[k])
    core = LearningCore(replace(spec, projection="rom")).elaborate(None)
    Fragment.get(core, None)  # elaborates the core's units too, so none is left unused
    rom = core.submodules[f"projection{k}"].init
    m = Module()
    m.submodules.dut = dut
    rom_word, from_rom, regen = Signal(lanes), Signal(), Signal(width)
    states = lfsr_states(m, regen, width, lanes, "projection")
    m.d.comb += dut.projection.eq(Mux(from_rom, rom_word, Cat(*(s[0] for s in states))))
    m.d.sync += regen.eq(states[-1])
    results = []

    async def bench(ctx: SimulatorContext) -> None:
        for label, words in cases:
            ctx.set(dut.label, label)
            for source in (1, 0):
                ctx.set(from_rom, source)
                ctx.set(regen, projection_seed(spec, k, label))
                out = []  # a word a cycle, as the core streams them; each out `latency` later
                for block, word in enumerate(words):
                    ctx.set(dut.state, word)
                    ctx.set(dut.block, block)
                    ctx.set(dut.real, _real_mask(spec, k, block))
                    ctx.set(rom_word, rom[label * blocks + block])
                    await ctx.tick()
                    out.append((_lanes(ctx.get(dut.factors)), ctx.get(dut.nonzero)))
                for _ in range(dut.latency - 1):
                    await ctx.tick()
                    out.append((_lanes(ctx.get(dut.factors)), ctx.get(dut.nonzero)))
                results.extend(out[dut.latency - 1 :])

    _simulate(m, bench, clocked=True)
    return results


@pytest.mark.parametrize("spec", DRTP_SPECS, ids=_name)
def test_drtp_hidden_factors_from_rom_and_lfsr(spec: CoreSpec) -> None:
    """A hidden layer's DRTP factor is `drtp_hidden_factor`: the label's projection row,
    from the ROM or regenerated by the LFSR alike, gated shut where the current saturates
    the neuron (LIF: |Z| ≥ Tθ after the ACC saturation; hard-tanh: the clip's edges), for
    every label and block."""
    rng = _rng(spec)
    acc = spec.accumulator
    for k in range(len(spec.hidden)):
        if spec.spiking:
            bound = spec.time_steps * spec.thresholds[k]
            z_max = spec.time_steps * (acc.max_int + 1)
            near = (bound, -bound, acc.max_int, acc.min_int)
        else:
            shift, top = spec.act_shifts[k], spec.activation_max
            z_max = acc.max_int
            near = (top << shift, (1 - top) << shift, -(top << shift))
        rows = projection_rom(spec, k)  # the golden model's projection
        cases, wants = [], []
        for label in range(spec.classes):
            for _ in range(2):
                z = _draw(rng, -z_max, z_max, spec.hidden[k], near=near)
                want = drtp_hidden_factor(spec, k, acc.saturate(z), rows[label])
                cases.append((label, _words(spec, k, rng, z=z)))
                wants.append((z, _blocked(spec, want)))
        results = iter(_drtp_hidden(spec, k, cases))
        for (label, _), (z, want) in zip(cases, wants, strict=True):
            for source in ("ROM", "LFSR"):
                for block, expected in enumerate(want):
                    factors, nonzero = next(results)
                    where = f"{spec.name}: DRTP layer {k} {source}, label {label} block {block}"
                    _expect(factors, expected, where, z=z)
                    _expect(nonzero, expected.any(), f"{where} nonzero", z=z)


# -- LFP factors -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", LFP_SPECS, ids=_name)
def test_reciprocal_like_golden(spec: CoreSpec) -> None:
    """`Reciprocal` equals `reciprocal_scaled` at every exponent (|Z| + 1 on each side of
    each power of two), at the current's and the reward's bounds, for negative currents and
    rewards, shifting right or left and saturating to ACC."""
    rng = _rng(spec)
    acc, reward = spec.accumulator, spec.reward
    powers = tuple(sign << e for e in range(spec.acc_bits - 1) for sign in (1, -1))
    currents = _draw(rng, acc.min_int, acc.max_int, 600, near=powers)
    rewards = _draw(rng, reward.min_int, reward.max_int, 600)
    vectors = [
        {"current": int(c), "reward": int(r)} for c, r in zip(currents, rewards, strict=True)
    ]
    dut = Reciprocal(spec)
    got = np.array([out["q"] for out in _clocked(dut, vectors, ("q",), dut.latency)])
    want = reciprocal_scaled(spec, recip_table(spec.recip_bits), rewards, currents)
    _expect_each(got, want, f"{spec.name}: reciprocal", current=currents, reward=rewards)


@pytest.mark.parametrize("spec", LFP_SPECS, ids=_name)
def test_lfp_factors_like_golden(spec: CoreSpec) -> None:
    """Output layer: the reward tables by spike count, the label's lane reading TRUE, then
    the reciprocal (`lfp_output_reward`, `reciprocal_scaled`) for every label and block.
    Hidden layers: the reward sent down passes the Heaviside step unchanged where the row
    was visited (`valid`) and is zero elsewhere. Padding lanes give 0."""
    rng = _rng(spec)
    acc, reward, last = spec.accumulator, spec.reward, len(spec.hidden)
    true, other = reward_tables(spec)
    recip = recip_table(spec.recip_bits)
    z_max = spec.time_steps * (acc.max_int + 1)
    for k in range(last + 1):
        n = spec.layer_sizes[k + 1]
        vectors, wants = [], []
        for label in range(spec.classes) if k == last else (0, 1):  # hidden: label unused
            z = _draw(rng, -z_max, z_max, n, near=(acc.max_int, acc.min_int))
            if k == last:
                counts = _draw(rng, 0, spec.time_steps, n)
                words = _words(spec, k, rng, n=counts, z=z)
                r = lfp_output_reward(true, other, counts, label)
                extra = [{} for _ in words]
            else:
                sent = _draw(rng, reward.min_int, reward.max_int, n)
                valid = rng.random(n) < 0.7
                words = _words(spec, k, rng, z=z)
                r = np.where(valid, sent, 0)
                garbage = _draw(rng, reward.min_int, reward.max_int, n + spec.lanes)
                extra = [
                    {"reward": s.tolist(), "valid": int((v << np.arange(spec.lanes)).sum())}
                    for s, v in zip(
                        _blocked(spec, sent, garbage),
                        _blocked(spec, valid, rng.random(n + spec.lanes) < 0.5),
                        strict=True,
                    )
                ]
            want = _blocked(spec, reciprocal_scaled(spec, recip, r, acc.saturate(z)))
            for block, (word, more) in enumerate(zip(words, extra, strict=True)):
                real = _real_mask(spec, k, block)
                vectors.append(
                    {"state": word, "label": label, "block": block, "real": real, **more}
                )
                wants.append((r, z, want[block]))
        dut = LFPFactors(spec, k)
        outputs = _clocked(dut, vectors, ("factors", "nonzero"), dut.latency)
        for vector, (r, z, want), out in zip(vectors, wants, outputs, strict=True):
            where = f"{spec.name}: LFP layer {k}, label {vector['label']} block {vector['block']}"
            _expect(_lanes(out["factors"]), want, where, reward=r, z=z)
            _expect(out["nonzero"], want.any(), f"{where} nonzero", reward=r, z=z)


# -- update lanes ------------------------------------------------------------------------


def _factor_range(spec: CoreSpec, k: int) -> tuple[int, int]:
    """What a post factor of layer k can be (contract §6–§7)."""
    if spec.rule == "lfp":
        return spec.accumulator.min_int, spec.accumulator.max_int
    if k < len(spec.hidden):
        return -1, 1
    if spec.spiking:
        return -spec.time_steps, spec.time_steps
    return -spec.activation_max, 2 * spec.activation_max


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("spec", UPDATE_SPECS, ids=_name)
def test_update_lanes_like_golden(spec: CoreSpec, rounding: str) -> None:
    """A visited word's new weights equal `weight_update` in every rounding mode, lane l
    rounding with the l-th LFSR state of the golden stream: saturation at both weight
    bounds, zero activity, zero weights (LFP leaves them), negative factors and
    activations. LFP's share of the reward sent down, `Σ_l W_l q_l`, is exact."""
    spec = replace(spec, rounding=rounding)
    rng = _rng(spec)
    stream = LFSRStream(rounding_lfsr(spec))
    lanes, weight = spec.lanes, spec.weight
    for k in range(len(spec.layer_sizes) - 1):
        a_low, a_high = _activity_range(spec, k)
        f_low, f_high = _factor_range(spec, k)
        vectors = [
            {
                "weights": _draw(rng, weight.min_int, weight.max_int, lanes).tolist(),
                "factors": _draw(rng, f_low, f_high, lanes).tolist(),
                "activity": int(_draw(rng, a_low, a_high, 1)[0]),
                "random": stream.take(lanes).tolist(),
            }
            for _ in range(60)
        ]
        corners = [  # the largest steps up and down from the bounds, and no activity
            (weight.max_int, f_high, a_high),
            (weight.min_int, f_low, a_high),
            (weight.min_int, f_high, a_low),
            (weight.max_int, f_high, 0),
        ]
        for vector, (w, f, a) in zip(vectors, corners, strict=False):
            vector.update(weights=[w] * lanes, factors=[f] * lanes, activity=a)
        dut = UpdateLanes(spec, k)
        outputs = _clocked(dut, vectors, ("next", "reward_sum"), dut.latency)
        for vector, out in zip(vectors, outputs, strict=True):
            w, f = np.array(vector["weights"]), np.array(vector["factors"])
            a, random = vector["activity"], np.array(vector["random"])
            want = weight_update(spec, k, w[None], np.array([[a]]), f, random[None])[0]
            where = f"{spec.name}: update layer {k}"
            _expect(
                _lanes(out["next"]), want, where, weights=w, factors=f, activity=a, random=random
            )
            if spec.rule == "lfp":
                _expect(out["reward_sum"], w @ f, f"{where} reward share", weights=w, factors=f)


def _memories(m: Module, attrs_seen: list | None = None) -> Callable[..., Memory]:
    """A memory factory as the core's: each memory a submodule of `m`."""

    def memory(
        name: str, shape: object, depth: int, init: object = (), attrs: dict | None = None
    ) -> Memory:
        m.submodules[name] = mem = Memory(shape=shape, depth=depth, init=init, attrs=attrs)
        if attrs_seen is not None:
            attrs_seen.append(attrs)
        return mem

    return memory


@pytest.mark.parametrize("poison", [False, True])
@pytest.mark.parametrize("spec", [DIGITS, banked_spec(0)], ids=_name)
def test_weight_memory_collision(spec: CoreSpec, poison: bool) -> None:
    """A word read in the cycle its address is written: the old word (simulation's read
    before write), or with `poison` the old word inverted; a cycle later, the new word.
    Every block RAM tells synthesis that collisions need no logic (`no_rw_check`)."""
    layer = Geometry(spec).layers[-1]
    m = Module()
    attrs: list = []
    shape = data.ArrayLayout(signed(spec.weight_bits), spec.lanes)
    wm = WeightMemory(m, _memories(m, attrs), layer, shape, (), poison)
    assert attrs == [{"no_rw_check": 1}] * len(layer.banks)
    full = (1 << Shape.cast(shape).width) - 1
    address = layer.words - 1  # in the last bank
    old, new = 0x5A5A5A5A5A5A5A5A & full, 0x0123456789ABCDEF & full

    async def bench(ctx: SimulatorContext) -> None:
        ctx.set(wm.read.addr, address)
        seen = []
        for value in (old, new, None, None, None):
            ctx.set(wm.write.en, 0 if value is None else (1 << spec.lanes) - 1)
            ctx.set(wm.write.addr, address)
            ctx.set(wm.write.data.as_value(), value or 0)
            await ctx.tick()
            seen.append(ctx.get(wm.read.data.as_value()))
        assert seen[-1] == new
        collided = seen[seen.index(new) - 1]  # read as `new` was written over `old`
        assert collided == (old ^ full if poison else old)

    _simulate(m, bench, clocked=True)


@pytest.mark.parametrize("spec", [DIGITS, banked_spec(0)], ids=_name)
def test_weight_memory_reads_back_its_writes(spec: CoreSpec) -> None:
    """The output layer's weight memory, one memory or banks: lane-enabled writes on and
    around every bank's edges, then one read a cycle, each word `latency` cycles later."""
    layer = Geometry(spec).layers[-1]
    m = Module()
    lanes, bits = spec.lanes, spec.weight_bits
    wm = WeightMemory(m, _memories(m), layer, data.ArrayLayout(signed(bits), lanes), ())
    assert len(layer.banks) == (1 if spec is DIGITS else 3)
    assert wm.latency == (1 if spec is DIGITS else 3)
    rng = _rng(spec)
    edges = {start + d for _, start, _ in layer.banks for d in (-1, 0, 1)}
    addrs = sorted({a for a in edges if 0 <= a < layer.words} | {layer.words - 1})
    addrs += [int(a) for a in rng.integers(0, layer.words, 24)]
    model: dict[int, list[int]] = {}
    mask = (1 << bits) - 1

    async def bench(ctx: SimulatorContext) -> None:
        for a in addrs:
            values = [int(v) for v in rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), lanes)]
            enable = int(rng.integers(1, 1 << lanes))
            word = model.setdefault(a, [0] * lanes)
            for n in range(lanes):
                if enable >> n & 1:
                    word[n] = values[n]
            packed = sum((v & mask) << (n * bits) for n, v in enumerate(values))
            ctx.set(wm.write.addr, a)
            ctx.set(wm.write.data.as_value(), packed)
            ctx.set(wm.write.en, enable)
            await ctx.tick()
        ctx.set(wm.write.en, 0)
        for i in range(len(addrs) + wm.latency - 1):
            if i < len(addrs):
                ctx.set(wm.read.addr, addrs[i])
            await ctx.tick()
            if i >= wm.latency - 1:
                a = addrs[i - wm.latency + 1]
                word = ctx.get(wm.read.data.as_value())
                got = [to_signed(word >> (n * bits) & mask, bits) for n in range(lanes)]
                assert got == model[a], f"word {a}"

    _simulate(m, bench, clocked=True)
