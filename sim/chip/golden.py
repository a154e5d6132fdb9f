"""The golden model: `docs/hardware_contract.md` in numpy integers, vectorised over neurons.

It learns online, one sample at a time, as the core does, and counts every operation and
memory access the contract's §8 names. Sums are formed exactly in int64 and saturated
once where the contract says (the spec's validation keeps them exact); the only loops
are over time steps and layers. The RTL is proven equal to this model in co-simulation;
`tests/sim/chip` proves it equal to a separate loop-by-loop reading of the contract.

Each hardware unit's arithmetic is a module-level pure function (numpy in, numpy out) that
`GoldenCore` calls, so the RTL unit benches (`tests/rtl/test_units.py`) compare every unit
against the very code the whole-core model runs.
"""

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from quant.counters import Counters
from quant.errors import ConfigError
from quant.fixed import shift_right
from quant.lfsr import LFSRStream
from quant.spec import CoreSpec
from quant.tables import projection_rom, recip_table, reward_tables, rounding_lfsr


@dataclass(frozen=True)
class Forward:
    """What the core reports for one sample: spike counts (or activations), the class, and
    whether a learning step ran (a `margin` gate skips samples already learned)."""

    output: np.ndarray
    prediction: int
    learned: bool = False


@dataclass(frozen=True)
class LayerTrace:
    """One weight layer's inference results that learning reads (contract §2–§3)."""

    activity: np.ndarray  # A_k,i, presynaptic window activity [n_k−1]
    current: np.ndarray  # Z_k,j, saturated window current [n_k]
    output: np.ndarray  # spike counts n_k,j or activations a_k,j [n_k]


class LIFState(NamedTuple):
    """One LIF layer within the window (contract §3): membrane `v`, last step's spikes `s`,
    exact window current `z` (saturated only when read) and spike count `n`."""

    v: np.ndarray
    s: np.ndarray
    z: np.ndarray
    n: np.ndarray

    @classmethod
    def rest(cls, width: int) -> "LIFState":
        """The state at the start of a sample: everything zero."""
        return cls(*(np.zeros(width, dtype=np.int64) for _ in range(4)))


def multi_bit(spec: CoreSpec, k: int) -> bool:
    """Whether layer k's inputs are multi-bit (a multiply per synapse), not spikes; behind a
    front end the first layer sees the conv neurons' spikes."""
    return not spec.spiking or (k == 0 and spec.encoding == "intensity" and not spec.conv)


def synaptic_sums(
    spec: CoreSpec, k: int, weights: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, int]:
    """Exact `Σ_i W[i, j] x_i` of layer k over the nonzero inputs and how many there were
    (§3); the neuron saturates it once. A spike adds the weight: no multiply."""
    events = np.flatnonzero(x)
    if len(events) == 0:
        return np.zeros(weights.shape[1], dtype=np.int64), 0
    if multi_bit(spec, k):
        return x[events] @ weights[events], len(events)
    return weights[events].sum(0), len(events)


def lif_fire(
    spec: CoreSpec, theta: int, v: np.ndarray, s: np.ndarray, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Membrane and spikes after one LIF step at threshold θ (§3): leak, integrate, subtract
    θ one step after a spike, fire above θ."""
    shift = spec.leak_shift
    leak = v >> shift if shift else 0
    v = spec.membrane.saturate(v - leak + current - theta * s)
    return v, (v > theta).astype(np.int64)


def lif_step(spec: CoreSpec, k: int, state: LIFState, current: np.ndarray) -> LIFState:
    """One time step of LIF layer k (§3); the window current and the spike count accumulate."""
    v, s = lif_fire(spec, spec.thresholds[k], state.v, state.s, current)
    return LIFState(v, s, state.z + current, state.n + s)


def conv_step(spec: CoreSpec, state: LIFState, current: np.ndarray) -> LIFState:
    """One time step of the front end's neurons (§3) at `conv_threshold`; they keep no
    window current (`z` stays zero): nothing learns from it."""
    v, s = lif_fire(spec, spec.conv_threshold, state.v, state.s, current)
    return LIFState(v, s, state.z, state.n + s)


def conv_sums(spec: CoreSpec, kernels: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Exact currents of the front end's neurons, flattened `(channel, row, column)` (§3).
    Each input event adds its taps to the patch it reaches; gathered per neuron, that is the
    "valid" cross-correlation of the image with the kernels at the stride."""
    k, stride = spec.conv_kernel, spec.conv_stride
    image = x.reshape(spec.image_shape)
    patches = sliding_window_view(image, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.tensordot(kernels, patches, axes=([1, 2, 3], [0, 3, 4])).ravel()


def conv_reach(spec: CoreSpec) -> np.ndarray:
    """Per input, how many output positions (row, column) its events reach (§8): the
    kernel words one event reads per block of channels."""
    _, height, width = spec.image_shape
    _, rows, cols = spec.conv_shape
    k, stride = spec.conv_kernel, spec.conv_stride

    def covered(size: int, outputs: int) -> np.ndarray:
        hits = (np.arange(outputs)[:, None] * stride + np.arange(k)).ravel()
        return np.bincount(hits, minlength=size)

    per_pixel = np.outer(covered(height, rows), covered(width, cols)).ravel()
    return np.tile(per_pixel, spec.image_shape[0])


def visit_order(spec: CoreSpec, k: int) -> np.ndarray:
    """Layer k's presynaptic rows in the order a learning step visits them (§5): ascending,
    but behind the front end, layer 1's in the order its state words hold them, position
    first, then channel (`j = o H' W' + pos`), so that the hardware reads their spike
    counts word after word."""
    n_in = spec.layer_sizes[k]
    if k > 0 or not spec.conv:
        return np.arange(n_in)
    channels, rows, cols = spec.conv_shape
    return np.arange(n_in).reshape(channels, rows * cols).T.ravel()


def hardtanh(spec: CoreSpec, k: int, z: np.ndarray) -> np.ndarray:
    """Activation `clip(z >> act_shifts[k], −A, A)` of hard-tanh layer k from its saturated
    current (§3)."""
    bound = spec.activation_max
    return np.minimum(np.maximum(z >> spec.act_shifts[k], -bound), bound)


def drtp_output_factor(spec: CoreSpec, output: np.ndarray, label: int) -> np.ndarray:
    """DRTP's output post factor, the error `y* − o` (§6): the target is T spikes (LIF) or
    A (hard-tanh) for the label, 0 for the other classes."""
    target = np.zeros(spec.classes, dtype=np.int64)
    target[label] = spec.time_steps if spec.spiking else spec.activation_max
    return target - output


def drtp_hidden_factor(spec: CoreSpec, k: int, current: np.ndarray, row: np.ndarray) -> np.ndarray:
    """DRTP's post factor of hidden layer k (§6): the label's projection row `B_k[label]`
    gated by the boxcar derivative of the neuron's transfer (open where not saturated)."""
    if spec.spiking:
        gate = np.abs(current) < spec.time_steps * spec.thresholds[k]
    else:
        gate = np.abs(current >> spec.act_shifts[k]) < spec.activation_max
    return row * gate


def lfp_output_reward(
    true: np.ndarray, other: np.ndarray, counts: np.ndarray, label: int
) -> np.ndarray:
    """LFP's output reward `R_K` (§7): the reward tables (`quant.tables.reward_tables`)
    indexed by spike count, the label's neuron reading TRUE."""
    return np.where(np.arange(len(counts)) == label, true[counts], other[counts])


def reciprocal_scaled(
    spec: CoreSpec, recip: np.ndarray, reward: np.ndarray, current: np.ndarray
) -> np.ndarray:
    """LFP's post factor `q_j ≈ R_j / (|Z_j| + 1)` with F fraction bits (§7): one entry of
    the reciprocal table `recip` (`quant.tables.recip_table`) per neuron."""
    m = spec.recip_bits
    d = np.abs(current) + 1
    e = np.zeros_like(d)
    for bit in range(1, 63):
        e += d >= (1 << bit)
    top = np.where(e >= m, d >> np.maximum(e - m, 0), d << np.maximum(m - e, 0))
    product = reward * recip[top - (1 << m)]
    s = e + m + 1 - spec.q_frac
    scaled = np.where(s >= 0, product >> np.maximum(s, 0), product << np.maximum(-s, 0))
    return spec.accumulator.saturate(scaled)


def lfp_reward_below(spec: CoreSpec, activity: np.ndarray, weighted: np.ndarray) -> np.ndarray:
    """The reward the layer below receives (§7), `sat_R((A · sat_ACC(Σ_j W q)) >> F)`, from
    the presynaptic activity and the exact sums `weighted` = `W q` of the old weights: the
    Heaviside step passes it unchanged."""
    below = spec.accumulator.saturate(weighted)
    return spec.reward.saturate((activity * below) >> spec.q_frac)


def weight_update(
    spec: CoreSpec,
    k: int,
    weights: np.ndarray,
    activity: np.ndarray,
    factor: np.ndarray,
    random_bits: np.ndarray | None = None,
) -> np.ndarray:
    """Updated weights `sat_W(W + Δ)` of layer k (§5–§7), broadcasting `activity` over
    columns and `factor` over rows: DRTP `Δ = round(p · A)`, LFP `Δ = round(|W| · A · q)`
    with F more fraction bits; `random_bits` are the LFSR states for stochastic rounding."""
    shift = spec.lr_shifts[k]
    if spec.rule == "drtp":
        product = factor * activity
    else:
        shift += spec.q_frac
        product = np.abs(weights) * activity * factor
    delta = shift_right(product, shift, spec.rounding, random_bits)
    return spec.weight.saturate(weights + delta)


def learned_already(forward: Forward, label: int, margin: int) -> bool:
    """The `margin` gate (contract §5): the sample is predicted right and the label's output
    leads every other class's by at least `margin`, so its learning step is skipped."""
    others = np.delete(forward.output, label)
    return forward.prediction == label and int(forward.output[label] - others.max()) >= margin


def check_weights(spec: CoreSpec, weights: list[np.ndarray]) -> list[np.ndarray]:
    """Copies of `weights` as int64, refused unless shapes and range match the spec."""
    checked = spec.layer_arrays(weights, np.int64)
    for k, w in enumerate(checked):
        if not spec.weight.contains(w):
            raise ConfigError(f"weights[{k}]: values outside the {spec.weight_bits}-bit range")
    return checked


class GoldenCore:
    """The learning core's state (weights, fixed kernels, rounding LFSR, counters) and its two
    operations."""

    def __init__(
        self,
        spec: CoreSpec,
        weights: list[np.ndarray],
        lfsr_state: int | None = None,
        kernels: np.ndarray | None = None,
    ) -> None:
        self.spec = spec
        self.weights = check_weights(spec, weights)
        self.kernels = None if kernels is None and not spec.conv else spec.kernel_array(kernels)
        if spec.conv:
            reach = conv_reach(spec)
            self._conv_words = reach * spec.blocks(spec.conv_channels)
            self._conv_taps = reach * spec.conv_channels
        self.counters = Counters()
        # The front end's kernel word reads, which §8 counts among `weight_reads`: apart, so
        # that the energy model prices them at the kernel memory's size.
        self.kernel_reads = 0
        self._stream = LFSRStream(rounding_lfsr(spec), lfsr_state)
        self._acc = spec.accumulator
        if spec.rule == "drtp":
            self._projection = [projection_rom(spec, k) for k in range(len(spec.hidden))]
        if spec.rule == "lfp":
            self._reward_true, self._reward_other = reward_tables(spec)
            self._recip = recip_table(spec.recip_bits)

    @property
    def lfsr_state(self) -> int:
        return self._stream.state

    def infer(self, x: np.ndarray) -> Forward:
        """Inference only (contract §3)."""
        return self.forward(self._check_input(x))[0]

    def learn(self, x: np.ndarray, label: int) -> Forward:
        """Inference, then one learning step on `label` (contract §5–§7)."""
        spec = self.spec
        if spec.rule == "none":
            raise ConfigError("this core has rule 'none': it cannot learn")
        if isinstance(label, bool) or not 0 <= int(label) < spec.classes:
            raise ConfigError(f"label must be in [0, {spec.classes - 1}], got {label!r}")
        forward, traces = self.forward(self._check_input(x))
        if spec.learn_gate == "margin":
            self.counters.add("learning", compares=spec.classes)
            if learned_already(forward, int(label), spec.gate_margin):
                return forward
        factors = (self._drtp_factors if spec.rule == "drtp" else self._lfp_factors)(
            traces, int(label)
        )
        for k in reversed(range(len(self.weights))):
            self._update(k, traces[k].activity, factors[k])
        return replace(forward, learned=True)

    # -- inference -------------------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        spec = self.spec
        if x.shape != (spec.inputs,) or not np.issubdtype(x.dtype, np.integer):
            raise ConfigError(f"input: expected {spec.inputs} integers, got {x.dtype} {x.shape}")
        if x.min(initial=0) < 0 or x.max(initial=0) >= 1 << spec.input_bits:
            raise ConfigError(f"input: codes must be in [0, 2^{spec.input_bits} - 1]")
        return x.astype(np.int64)

    def _encode(self, x: np.ndarray) -> np.ndarray:
        """Per-step inputs `[T, inputs]` (contract §2)."""
        spec = self.spec
        steps = spec.time_steps
        if spec.encoding == "intensity":
            return np.broadcast_to(x, (steps, spec.inputs))
        full = 1 << spec.input_bits
        phase = np.full(spec.inputs, full >> 1, dtype=np.int64)
        spikes = np.empty((steps, spec.inputs), dtype=np.int64)
        for t in range(steps):
            phase += x
            spikes[t] = phase >= full
            phase -= spikes[t] * full
        self.counters.add("inference", adds=steps * spec.inputs, compares=steps * spec.inputs)
        return spikes

    def _integrate(self, k: int, x: np.ndarray) -> tuple[np.ndarray, int]:
        """`sat_ACC(Σ_i W[i, j] x_i)` over the nonzero inputs, and how many there were."""
        sums, events = synaptic_sums(self.spec, k, self.weights[k], x)
        return self._acc.saturate(sums), events

    def _count_layer(self, k: int, events: int, neuron_steps: int, **per_neuron: int) -> None:
        """Inference counts of layer k: its presynaptic events and its neuron updates."""
        spec = self.spec
        width = self.weights[k].shape[1]
        ops = events * width
        words = events * spec.blocks(width)
        self.counters.add(
            "inference",
            syn_ops=ops,
            adds=ops,
            mults=ops if multi_bit(spec, k) else 0,
            weight_reads=words,
            cycles=words + neuron_steps * spec.blocks(width),
        )
        self.counters.add(
            "inference", **{kind: n * width * neuron_steps for kind, n in per_neuron.items()}
        )

    def _convolve(self, steps_in: np.ndarray) -> np.ndarray:
        """The front end's spikes `[T, n_0]` (contract §3), counted as inference (§8)."""
        spec, kernels = self.spec, self.kernels
        once = spec.encoding == "intensity"  # a constant current: integrated once
        per_step = steps_in[:1] if once else steps_in
        currents = [conv_sums(spec, kernels, inp) for inp in per_step]  # ACC holds them
        state = LIFState.rest(spec.conv_outputs)
        spikes = np.empty((spec.time_steps, spec.conv_outputs), dtype=np.int64)
        for t in range(spec.time_steps):
            state = conv_step(spec, state, currents[0 if once else t])
            spikes[t] = state.s
        events = per_step != 0
        taps = int((events * self._conv_taps).sum())
        words = int((events * self._conv_words).sum())
        self.kernel_reads += words
        channels, rows, cols = spec.conv_shape
        neuron_steps = spec.conv_outputs * spec.time_steps
        self.counters.add(
            "inference",
            syn_ops=taps,
            adds=taps + 3 * neuron_steps,
            mults=taps if once else 0,
            weight_reads=words,
            state_reads=neuron_steps,
            state_writes=neuron_steps,
            compares=neuron_steps,
            cycles=words + rows * cols * spec.blocks(channels) * spec.time_steps,
        )
        return spikes

    def forward(self, x: np.ndarray) -> tuple[Forward, list[LayerTrace]]:
        """Inference (counted) with the per-layer trace that learning reads."""
        traces = self._forward_lif(x) if self.spec.spiking else self._forward_hardtanh(x)
        last = traces[-1]
        order = np.lexsort((np.arange(len(last.output)), -last.current, -last.output))
        classes = self.spec.classes
        self.counters.add("inference", compares=classes - 1, cycles=classes)
        return Forward(last.output.copy(), int(order[0])), traces

    def _forward_lif(self, x: np.ndarray) -> list[LayerTrace]:
        spec = self.spec
        steps_in = self._encode(x)
        if spec.conv:
            steps_in = self._convolve(steps_in)
        steps = spec.time_steps
        widths = spec.layer_sizes[1:]
        states = [LIFState.rest(n) for n in widths]
        events = [0] * len(widths)
        once = spec.encoding == "intensity" and not spec.conv
        if once:  # layer 1's current is the same at every step: integrate it once
            first_current, events[0] = self._integrate(0, x)
        for t in range(steps):
            inp = steps_in[t]
            for k in range(len(widths)):
                if k == 0 and once:
                    current = first_current
                else:
                    current, n_events = self._integrate(k, inp)
                    events[k] += n_events
                states[k] = lif_step(spec, k, states[k], current)
                inp = states[k].s
        for k in range(len(widths)):
            self._count_layer(
                k, events[k], steps, state_reads=1, state_writes=1, adds=4, compares=1
            )
        activity = [steps_in.sum(0), *(state.n for state in states[:-1])]
        return [
            LayerTrace(activity[k], self._acc.saturate(state.z), state.n)
            for k, state in enumerate(states)
        ]

    def _forward_hardtanh(self, x: np.ndarray) -> list[LayerTrace]:
        spec = self.spec
        traces = []
        inp = x
        for k in range(len(spec.layer_sizes) - 1):
            z, events = self._integrate(k, inp)
            a = hardtanh(spec, k, z)
            self._count_layer(k, events, 1, state_reads=1, state_writes=1, compares=2)
            traces.append(LayerTrace(inp, z, a))
            inp = a
        return traces

    # -- learning --------------------------------------------------------------------------

    def _drtp_factors(self, traces: list[LayerTrace], label: int) -> list[np.ndarray]:
        """Post factors of contract §6: output error, gated projection row for hidden layers."""
        spec = self.spec
        factors = []
        for k, trace in enumerate(traces[:-1]):
            row = self._projection[k][label]
            factors.append(drtp_hidden_factor(spec, k, trace.current, row))
            width = len(row)
            if spec.projection == "rom":
                self.counters.add("learning", proj_reads=spec.blocks(width))
            else:
                self.counters.add("learning", lfsr_draws=width)
            self.counters.add("learning", compares=2 * width)
        factors.append(drtp_output_factor(spec, traces[-1].output, label))
        self.counters.add("learning", adds=spec.classes)
        return factors

    def _lfp_factors(self, traces: list[LayerTrace], label: int) -> list[np.ndarray]:
        """Post factors q of contract §7, the reward descending through the old weights."""
        spec = self.spec
        reward = lfp_output_reward(self._reward_true, self._reward_other, traces[-1].output, label)
        self.counters.add("learning", table_reads=spec.classes)
        factors: list[np.ndarray] = [np.empty(0)] * len(traces)
        for k in reversed(range(len(traces))):
            trace = traces[k]
            q = reciprocal_scaled(spec, self._recip, reward, trace.current)
            factors[k] = q
            width = len(q)
            self.counters.add("learning", mults=width, adds=width, table_reads=width)
            if k > 0:
                reward = lfp_reward_below(spec, trace.activity, self.weights[k] @ q)
        return factors

    def _update(self, k: int, activity: np.ndarray, factor: np.ndarray) -> None:
        """Visit the words of contract §5 and apply layer k's rounded updates."""
        spec, w = self.spec, self.weights[k]
        n_in, n_out = w.shape
        lanes = spec.lanes
        order = visit_order(spec, k)
        rows = order[activity[order] != 0]
        active = np.flatnonzero(np.add.reduceat(factor != 0, np.arange(0, n_out, lanes)))
        if len(active) == 0:
            rows = rows[:0]
        cols = (active[:, None] * lanes + np.arange(lanes)).ravel()
        real = cols < n_out
        cols = cols[real]
        visited = len(rows) * len(active)
        synapses = len(rows) * len(cols)
        output_layer = k == len(self.weights) - 1
        if spec.rule == "drtp":
            mults = synapses if output_layer else 0
            adds = synapses
        else:
            mults = 2 * synapses + (synapses + len(rows) if k > 0 else 0)
            adds = synapses * (2 if k > 0 else 1)
            if k > 0:
                self.counters.add("learning", state_writes=len(rows))
        if visited:
            random_bits = None
            if spec.rounding == "stochastic":
                draws = self._stream.take(visited * lanes)
                random_bits = draws.reshape(len(rows), -1)[:, real]
                self.counters.add("learning", lfsr_draws=visited * lanes)
            block = np.ix_(rows, cols)
            w[block] = weight_update(
                spec, k, w[block], activity[rows, None], factor[cols], random_bits
            )
        self.counters.add(
            "learning",
            syn_ops=synapses,
            mults=mults,
            adds=adds + (synapses if spec.rounding != "floor" else 0),
            weight_reads=visited,
            weight_writes=visited,
            state_reads=n_in + n_out,
            cycles=visited + spec.blocks(n_out) + spec.blocks(n_in),
        )
