"""Unit benches of the convolutional front end's event datapath (`rtl/conv.py`): the address
pairs each input event reaches, the exact currents of whole samples and the kernel-word
count, each compared exactly with the contract (§3, §5, §8) and the golden model."""

from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator, SimulatorContext

from quant.spec import CoreSpec, load_spec
from rtl.conv import ConvEvents, ConvGeometry, ConvReach, FrontEnd, kernel_words, reciprocal
from sim.chip.golden import LIFState, conv_reach, conv_step, conv_sums

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DIGITS_CONV = load_spec(CONFIGS / "digits_conv.toml")


def _variant(name: str, image: tuple[int, int, int], **fields: object) -> CoreSpec:
    c, h, w = image
    return replace(DIGITS_CONV, name=name, inputs=c * h * w, image_shape=image, **fields)


# Strides 1–3, kernels 2, 3 and 5, one to three input channels, C_out a multiple of the
# lanes or not (padded lanes), pixels that no window covers (k < s, and rows or columns
# past the last window), spike and intensity events.
SPECS = [
    DIGITS_CONV,
    _variant(
        "conv_k2_s2", (2, 9, 7), conv_kernel=2, conv_stride=2, conv_channels=5, lanes=4,
        encoding="spikes",
    ),
    _variant("conv_k5_s3", (1, 12, 13), conv_kernel=5, conv_stride=3, conv_channels=11, lanes=4),
    _variant("conv_k2_s3", (3, 7, 8), conv_kernel=2, conv_stride=3, conv_channels=3, lanes=2),
    _variant("conv_k2_s1", (2, 3, 3), conv_kernel=2, conv_stride=1, conv_channels=3, lanes=4),
]  # fmt: skip


def _name(spec: CoreSpec) -> str:
    return spec.name


def _pixel(spec: CoreSpec, i: int) -> tuple[int, int, int]:
    _, height, width = spec.image_shape
    plane, x = divmod(i, width)
    c, y = divmod(plane, height)
    return c, y, x


def _expected_pairs(spec: CoreSpec, i: int) -> list[tuple[int, int]]:
    """The contract's pairs for an event at input i, in the generator's order (y' then x'
    descending, block ascending): kernel word ((c k + dy) k + dx) B + b, state word
    (y' W' + x') B + b."""
    k, s = spec.conv_kernel, spec.conv_stride
    _, rows, cols = spec.conv_shape
    blocks = spec.blocks(spec.conv_channels)
    c, y, x = _pixel(spec, i)
    pairs = []
    for yp in reversed(range(rows)):
        for xp in reversed(range(cols)):
            dy, dx = y - s * yp, x - s * xp
            if 0 <= dy < k and 0 <= dx < k:
                for b in range(blocks):
                    pairs.append(
                        (((c * k + dy) * k + dx) * blocks + b, (yp * cols + xp) * blocks + b)
                    )
    return pairs


async def _rewind(ctx: SimulatorContext, dut: object) -> None:
    ctx.set(dut.rewind, 1)
    await ctx.tick()
    ctx.set(dut.rewind, 0)


async def _issue(
    ctx: SimulatorContext, dut: object, events: list, each_cycle: Callable[[SimulatorContext], None]
) -> int:
    """Start `events` (row, value) as fast as `ready` allows, calling `each_cycle` before
    every clock edge, until the unit is idle; the cycles that took."""
    pending = list(events)
    cycles = 0
    while pending or ctx.get(dut.busy):
        cycles += 1
        start = bool(pending) and bool(ctx.get(dut.ready))
        ctx.set(dut.start, start)
        if start:
            row, value = pending.pop(0)
            ctx.set(dut.row, row)
            ctx.set(dut.value, value)
        each_cycle(ctx)
        await ctx.tick()
    ctx.set(dut.start, 0)
    return cycles


def test_reciprocal_divides_exactly() -> None:
    for divisor in range(1, 12):
        for limit in (1, 2, 7, 64, 1000):
            m, shift = reciprocal(divisor, limit)
            v = np.arange(limit)
            assert ((v * m) >> shift).tolist() == (v // divisor).tolist()


@pytest.mark.parametrize("spec", SPECS, ids=_name)
def test_reach_pairs_follow_the_contract(spec: CoreSpec) -> None:
    """Every input pixel, one event each in ascending order (the cursor crosses every pixel
    row): the pairs grouped by `last` equal the contract's enumeration, whose length is the
    golden `conv_reach` times blocks(C_out), at one pair a cycle."""
    blocks = spec.blocks(spec.conv_channels)
    expected = [_expected_pairs(spec, i) for i in range(spec.inputs)]
    assert [len(p) for p in expected] == (conv_reach(spec) * blocks).tolist()
    dut = ConvReach(spec)
    groups: list[list[tuple[int, int]]] = [[]]
    cycles: list[int] = []

    def collect(ctx: SimulatorContext) -> None:
        if ctx.get(dut.valid):
            groups[-1].append((ctx.get(dut.kernel_addr), ctx.get(dut.state_addr)))
            if ctx.get(dut.last):
                groups.append([])

    async def bench(ctx: SimulatorContext) -> None:
        await _rewind(ctx, dut)
        cycles.append(await _issue(ctx, dut, [(i, 1) for i in range(spec.inputs)], collect))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert groups.pop() == []
    assert groups == [p for p in expected if p]
    # One pair a cycle: beyond the pairs, only events that reach nothing (one start each)
    # and the cursor's pixel-row steps that no pair hides cost cycles.
    unreached = sum(not p for p in expected)
    pixel_rows = spec.image_shape[0] * spec.image_shape[1]
    assert cycles[0] <= sum(map(len, expected)) + unreached + pixel_rows + 3


def _kernels(spec: CoreSpec, kind: str) -> np.ndarray:
    """Kernels of `kind`: random over the whole KB-bit range with its edges, or every tap at
    the range's top or bottom (the largest sums of each sign)."""
    top = 1 << (spec.kernel_bits - 1)
    shape = (spec.conv_channels, spec.image_shape[0], spec.conv_kernel, spec.conv_kernel)
    if kind == "max":
        return np.full(shape, top - 1)
    if kind == "min":
        return np.full(shape, -top)
    rng = np.random.default_rng(list(spec.name.encode()))
    values = rng.integers(-top, top, shape)
    edges = rng.random(shape) < 1 / 3
    values[edges] = rng.choice([-top, -top + 1, -1, 0, 1, top - 1], int(edges.sum()))
    return values


def _samples(spec: CoreSpec, kind: str) -> list[np.ndarray]:
    """Inputs: every pixel at the largest value, then two random ones (sparse and dense,
    largest values and zeros among them)."""
    x_max = (1 << spec.input_bits) - 1 if spec.encoding == "intensity" else 1
    rng = np.random.default_rng([*spec.name.encode(), len(kind)])
    samples = [np.full(spec.inputs, x_max)]
    for density in (0.2, 0.8):
        x = rng.integers(1, x_max + 1, spec.inputs)
        x[rng.random(spec.inputs) < 1 / 4] = x_max
        x[rng.random(spec.inputs) > density] = 0
        samples.append(x)
    return samples


@cache
def _run(spec: CoreSpec, kind: str) -> tuple[list[np.ndarray], int, int]:
    return _through_events(spec, _kernels(spec, kind), _samples(spec, kind))


def _through_events(
    spec: CoreSpec, kernels: np.ndarray, samples: list[np.ndarray]
) -> tuple[list[np.ndarray], int, int]:
    """Each sample's events through `ConvEvents` (rewound between samples): the currents
    read back per neuron `(o, y', x')`, and the kernel words read and taps taken over all
    samples, counted from the per-cycle strobes. Padding lanes must stay zero."""
    kernels = spec.kernel_array(kernels)
    g = ConvGeometry.of(spec)
    dut = ConvEvents(spec, kernels)
    currents: list[np.ndarray] = []
    reads = [0, 0]

    def count(ctx: SimulatorContext) -> None:
        reads[0] += ctx.get(dut.kernel_read)
        reads[1] += ctx.get(dut.taps)

    async def bench(ctx: SimulatorContext) -> None:
        for x in samples:
            await _rewind(ctx, dut)
            await _issue(ctx, dut, [(int(i), int(x[i])) for i in np.flatnonzero(x)], count)
            words = []
            ctx.set(dut.zero, 1)
            for a in range(g.state_words):
                ctx.set(dut.current_addr, a)
                await ctx.tick()
                words.append([int(v) for v in ctx.get(dut.current)])
            ctx.set(dut.zero, 0)
            lanes = np.array(words).reshape(g.rows, g.cols, g.blocks * g.lanes)
            assert not lanes[:, :, g.outputs :].any(), "a padding lane took a current"
            currents.append(lanes[:, :, : g.outputs].transpose(2, 0, 1).ravel())

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return currents, reads[0], reads[1]


KINDS = ["random", "max", "min"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=_name)
def test_currents_equal_golden_conv_sums(spec: CoreSpec, kind: str) -> None:
    kernels = spec.kernel_array(_kernels(spec, kind))
    currents, _, _ = _run(spec, kind)
    for n, x in enumerate(_samples(spec, kind)):
        want = conv_sums(spec, kernels, x)
        assert currents[n].tolist() == want.tolist(), f"{spec.name} {kind} sample {n}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SPECS, ids=_name)
def test_kernel_reads_are_the_contract_count(spec: CoreSpec, kind: str) -> None:
    """§8: an event reads `r_y r_x blocks(C_out)` kernel words and takes `C_out r_y r_x`
    taps."""
    _, reads, taps = _run(spec, kind)
    reach = conv_reach(spec)
    events = [x != 0 for x in _samples(spec, kind)]
    assert reads == sum(int(reach[e].sum()) for e in events) * spec.blocks(spec.conv_channels)
    assert taps == sum(int(reach[e].sum()) for e in events) * spec.conv_channels


def test_back_to_back_events_on_one_current_word() -> None:
    """Two events whose pairs meet on one current word in consecutive cycles: (0, 1, 1)
    reaches the four positions of 2 x 3 x 3 images under 2 x 2 kernels, ending at (0, 0),
    and while it runs the cursor crosses to (1, 0, 0), whose only pair is (0, 0) again. With
    one block per position the second read must see the first one's write."""
    spec = SPECS[-1]
    assert spec.blocks(spec.conv_channels) == 1
    x = np.zeros(spec.inputs, dtype=np.int64)
    x[[4, 9]] = [7, 15]
    kernels = _kernels(spec, "random")
    currents, reads, _ = _through_events(spec, kernels, [x])
    assert currents[0].tolist() == conv_sums(spec, spec.kernel_array(kernels), x).tolist()
    assert reads == 5


def _step_inputs(spec: CoreSpec, x: np.ndarray) -> list[np.ndarray]:
    """A sample's events per step: under `intensity` the codes once, at t = 1 (the currents
    are kept); under `spikes` a random spike train whose rate follows the sample."""
    if spec.encoding == "intensity":
        return [x]
    rng = np.random.default_rng([*spec.name.encode(), int(x.sum())])
    return [(rng.random(spec.inputs) < 0.2 + 0.6 * x).astype(np.int64) for _ in range(8)]


def _golden_spikes(spec: CoreSpec, kernels: np.ndarray, steps_in: list[np.ndarray]) -> list:
    """Spikes of the front end's neurons per step: `conv_step` on `conv_sums` (§3)."""
    state = LIFState.rest(spec.conv_outputs)
    spikes = []
    for t in range(spec.time_steps):
        x = steps_in[0] if spec.encoding == "intensity" else steps_in[t % len(steps_in)]
        state = conv_step(spec, state, conv_sums(spec, kernels, x))
        spikes.append(state.s.tolist())
    return spikes


def _through_front_end(spec: CoreSpec, kernels: np.ndarray, samples: list[list]) -> list:
    """Samples (each its inputs per step) one after another through one `FrontEnd`: per step
    the events, then the walk; per sample and step the spikes it emits by neuron
    j = (o H' + y') W' + x'. Each word must leave exactly once a step, whatever cycles
    `hold` takes; a sample starts from
    rest (`first`) whatever the previous one left in the state memory. The kernels go in
    first through the host's write port."""
    g = ConvGeometry.of(spec)
    dut = FrontEnd(spec)  # the kernel memory starts empty: the bench writes it, as a host
    spikes: list[list[list[int]]] = []
    positions = g.rows * g.cols

    def collect(ctx: SimulatorContext, seen: list, fired: list) -> None:
        if ctx.get(dut.fired_valid):
            pos, block, mask = ctx.get(dut.pos), ctx.get(dut.block), ctx.get(dut.fired)
            seen.append((pos, block))
            for lane in range(g.lanes):
                channel = block * g.lanes + lane
                if channel < g.outputs:
                    fired[channel * positions + pos] = mask >> lane & 1
                else:
                    assert not mask >> lane & 1, "a padding lane fired"

    async def bench(ctx: SimulatorContext) -> None:
        ctx.set(dut.kernel_w_en, (1 << g.lanes) - 1)
        for address, word in enumerate(kernel_words(spec, kernels)):
            ctx.set(dut.kernel_w_addr, address)
            ctx.set(dut.kernel_w_data, word)
            await ctx.tick()
        ctx.set(dut.kernel_w_en, 0)
        for steps_in in samples:
            spikes.append(await run(ctx, steps_in))

    async def run(ctx: SimulatorContext, steps_in: list) -> list[list[int]]:
        per_step = []
        for t in range(spec.time_steps):
            if t == 0 or spec.encoding == "spikes":
                x = steps_in[t % len(steps_in)]
                await _rewind(ctx, dut)
                events = [(int(i), int(x[i])) for i in np.flatnonzero(x)]
                await _issue(ctx, dut, events, lambda ctx: None)
            seen: list = []
            fired = [0] * g.outputs * positions
            ctx.set(dut.step, 1)
            ctx.set(dut.first, t == 0)
            ctx.set(dut.clear, spec.encoding == "spikes" or t == spec.time_steps - 1)
            await ctx.tick()
            ctx.set(dut.step, 0)
            cycle = 0
            while ctx.get(dut.busy):  # the walk held back in every third cycle
                ctx.set(dut.hold, cycle % 3 == 1)
                collect(ctx, seen, fired)
                await ctx.tick()
                cycle += 1
            collect(ctx, seen, fired)
            assert seen == [(p, b) for p in range(positions) for b in range(g.blocks)], seen
            per_step.append(fired)
        counts = [0] * g.outputs * positions  # after the last step: n_cv by neuron
        for word in range(g.state_words):
            ctx.set(dut.count_addr, word)
            await ctx.tick()
            pos, block = divmod(word, g.blocks)
            for lane, n in enumerate(ctx.get(dut.counts)):
                if block * g.lanes + lane < g.outputs:
                    counts[(block * g.lanes + lane) * positions + pos] = int(n)
        assert counts == np.sum(per_step, axis=0).tolist(), "spike counts differ from the spikes"
        return per_step

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return spikes


@pytest.mark.parametrize("spec", SPECS, ids=_name)
def test_front_end_spikes_equal_golden(spec: CoreSpec) -> None:
    """`FrontEnd`: a sample's events, then T steps of the conv neurons' LIF update, spike
    like `conv_step` on `conv_sums` at every step, neuron by neuron, with the currents kept
    across steps (`intensity`) or cleared and integrated anew (`spikes`); the counts read
    out after the last step are the spikes summed."""
    kernels = spec.kernel_array(_kernels(spec, "random"))
    samples = [_step_inputs(spec, x) for x in _samples(spec, "random")]
    got = _through_front_end(spec, kernels, samples)
    for n, steps_in in enumerate(samples):
        want = _golden_spikes(spec, kernels, steps_in)
        for t, (a, b) in enumerate(zip(got[n], want, strict=True)):
            off = np.flatnonzero(np.subtract(a, b))[:1]
            assert a == b, f"{spec.name}: sample {n} step {t}: neuron {off} differs first"
    assert sum(sum(map(sum, steps)) for steps in got) > 0, "no conv neuron fired"
