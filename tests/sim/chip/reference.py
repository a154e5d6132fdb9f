"""A slow, loop-by-loop reading of `docs/hardware_contract.md`, to check the golden model.

Every quantity is a Python int and every sum, product, shift and counter is written as
one loop per index of the contract, in the contract's order: nothing is vectorised, so
this file shares no arithmetic with `sim.chip.golden`. It uses only the constant tables
of `quant.tables` (their single definition) and the serial `quant.lfsr.step`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from quant.counters import Counters
from quant.lfsr import step
from quant.spec import CoreSpec
from quant.tables import projection_row, recip_table, reward_tables, rounding_lfsr

Matrix = list[list[int]]


def sat(v: int, bits: int) -> int:
    """`sat_X(v)` of contract §1: clamp to the signed `bits`-bit range."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return low if v < low else high if v > high else v


def round_shift(v: int, n: int, rounding: str, draw: int = 0) -> int:
    """`round_n(v)` of contract §4; `draw` is the LFSR state the lane took (stochastic)."""
    if rounding == "floor":
        return v >> n
    if rounding == "nearest":
        return v if n == 0 else (v + (1 << (n - 1))) >> n
    if rounding == "stochastic":
        return (v + (draw & ((1 << n) - 1))) >> n
    raise ValueError(f"unknown rounding {rounding!r}")


def sigma_delta(x: int, bits: int, steps: int) -> list[int]:
    """The spike train of one input over the window (contract §2, `spikes` encoding)."""
    phase, train = 1 << (bits - 1), []
    for _ in range(steps):
        phase += x
        if phase >= 1 << bits:
            train.append(1)
            phase -= 1 << bits
        else:
            train.append(0)
    return train


def reciprocal(d: int, m: int) -> tuple[int, int]:
    """`(RECIP[top − 2^m], e)` with `1/d ≈ RECIP[top − 2^m] · 2^−(e + m + 1)` (contract §7)."""
    e = d.bit_length() - 1
    top = d >> (e - m) if e >= m else d << (m - e)
    return int(recip_table(m)[top - (1 << m)]), e


def reward_per_current(reward: int, z: int, spec: CoreSpec) -> int:
    """`q_j = sat_ACC(R_j · RECIP[top_j − 2^m] >> s_j)` with `d_j = |Z_j| + 1` (contract §7)."""
    mantissa, e = reciprocal(abs(z) + 1, spec.recip_bits)
    s = e + spec.recip_bits + 1 - spec.q_frac
    product = reward * mantissa
    return sat(product >> s if s >= 0 else product << -s, spec.acc_bits)


def argmax_with_ties(values: Sequence[int], currents: Sequence[int]) -> int:
    """The largest value; ties go to the larger window current, then to the lower index."""
    best = 0
    for c in range(1, len(values)):
        if values[c] > values[best] or (values[c] == values[best] and currents[c] > currents[best]):
            best = c
    return best


@dataclass
class Pass:
    """What one inference leaves for the learning step, per weight layer k = 1 … K
    (list index k − 1): presynaptic window activities `A_k`, window currents `Z_k`, and
    the layer's outputs (spike counts `n_k` or activations `a_k`)."""

    activity: list[list[int]] = field(default_factory=list)
    current: list[list[int]] = field(default_factory=list)
    out: list[list[int]] = field(default_factory=list)
    membrane: list[list[list[int]]] = field(default_factory=list)  # LIF: [layer][t][j]
    spikes: list[list[list[int]]] = field(default_factory=list)  # LIF: [layer][t][j]
    conv_current: list[list[int]] = field(default_factory=list)  # front end: [t][j]
    conv_membrane: list[list[int]] = field(default_factory=list)  # front end: [t][j]
    conv_spikes: list[list[int]] = field(default_factory=list)  # front end: [t][j]
    prediction: int = 0


class ReferenceCore:
    """The learning core's state (weights, rounding LFSR, counters) and its two operations."""

    def __init__(
        self,
        spec: CoreSpec,
        weights: Sequence[Sequence[Sequence[int]]] | Sequence[np.ndarray],
        lfsr_state: int | None = None,
        kernels: np.ndarray | None = None,
    ) -> None:
        self.spec = spec
        sizes = spec.layer_sizes
        if len(weights) != len(sizes) - 1:
            raise ValueError(f"expected {len(sizes) - 1} weight matrices, got {len(weights)}")
        self._w: list[Matrix] = []
        for k, matrix in enumerate(weights):
            rows = [[int(v) for v in row] for row in matrix]
            if len(rows) != sizes[k] or any(len(row) != sizes[k + 1] for row in rows):
                raise ValueError(f"W_{k + 1} must be {sizes[k]} x {sizes[k + 1]}")
            self._w.append(rows)
        # K[o][c][dy][dx] of the front end, fixed: nothing below writes it
        self._kernels = None if kernels is None else np.asarray(kernels).tolist()
        self._lfsr = rounding_lfsr(spec)
        self.lfsr_state = spec.seed if lfsr_state is None else lfsr_state
        self.counters = Counters()
        self.last: Pass | None = None

    @property
    def weights(self) -> list[np.ndarray]:
        return [np.array(w, dtype=np.int64).reshape(len(w), -1) for w in self._w]

    def infer(self, x: Sequence[int] | np.ndarray) -> tuple[list[int], int]:
        p = self._forward([int(v) for v in x])
        return list(p.out[-1]), p.prediction

    def learn(self, x: Sequence[int] | np.ndarray, label: int) -> tuple[list[int], int]:
        if self.spec.rule == "none":
            raise ValueError("rule 'none' does not learn")
        p = self._forward([int(v) for v in x])
        if not self._gated(p, int(label)):
            self._learn(p, int(label))
        return list(p.out[-1]), p.prediction

    def _gated(self, p: Pass, label: int) -> bool:
        """Contract §5's `margin` gate: one compare per class (C − 1 for the runner-up, one
        against the margin); true when the step is skipped."""
        spec = self.spec
        if spec.learn_gate == "always":
            return False
        self.counters.add("learning", compares=spec.classes)
        out = p.out[-1]
        runner_up = None
        for c in range(spec.classes):
            if c != label and (runner_up is None or out[c] > runner_up):
                runner_up = out[c]
        return p.prediction == label and out[label] - runner_up >= spec.gate_margin

    # -- inference (contract §2, §3) ------------------------------------------------------

    def _visit_order(self, k: int) -> list[int]:
        """Rows of layer k in visit order: ascending; behind the front end, layer 1's
        position by position, the channels of each position in turn."""
        spec = self.spec
        if k > 0 or not spec.conv:
            return list(range(spec.layer_sizes[k]))
        channels, rows, cols = spec.conv_shape
        return [o * rows * cols + pos for pos in range(rows * cols) for o in range(channels)]

    def _count(self, **kinds: int) -> None:
        self.counters.add("inference", **kinds)

    def _integrate(self, k: int, inp: list[int], multibit: bool) -> list[int]:
        """`sat_ACC(Σ_i W_k[i, j] · x_i)` for every j, and the counters of its events."""
        w, n_in, n_out = self._w[k], len(inp), len(self._w[k][0])
        events = 0
        for i in range(n_in):
            if inp[i] != 0:
                events += 1
        blocks = self.spec.blocks(n_out)
        self._count(
            syn_ops=n_out * events,
            adds=n_out * events,
            mults=n_out * events if multibit else 0,
            weight_reads=blocks * events,
            cycles=blocks * events,
        )
        current = []
        for j in range(n_out):
            total = 0
            for i in range(n_in):
                total += w[i][j] * inp[i]
            current.append(sat(total, self.spec.acc_bits))
        return current

    def _forward(self, x: list[int]) -> Pass:
        spec = self.spec
        if len(x) != spec.inputs or any(not 0 <= v < 1 << spec.input_bits for v in x):
            raise ValueError("x must hold `inputs` integers in [0, 2^input_bits - 1]")
        p = self._forward_lif(x) if spec.spiking else self._forward_hardtanh(x)
        p.prediction = argmax_with_ties(p.out[-1], p.current[-1])
        self._count(compares=spec.classes - 1, cycles=spec.classes)
        self.last = p
        return p

    def _forward_lif(self, x: list[int]) -> Pass:
        spec = self.spec
        sizes, steps = spec.layer_sizes, spec.time_steps
        n_layers = len(sizes) - 1
        if spec.encoding == "intensity":
            trains = [[x[i] for i in range(spec.inputs)] for _ in range(steps)]
            first_activity = [steps * x[i] for i in range(spec.inputs)]
        else:
            per_input = [sigma_delta(x[i], spec.input_bits, steps) for i in range(spec.inputs)]
            trains = [[per_input[i][t] for i in range(spec.inputs)] for t in range(steps)]
            first_activity = [sum(per_input[i]) for i in range(spec.inputs)]
            self._count(adds=spec.inputs * steps, compares=spec.inputs * steps)
        p = Pass()
        if spec.conv_channels > 0:
            trains = self._front_end(trains, p)
            first_activity = [
                sum(trains[t][j] for t in range(steps)) for j in range(len(trains[0]))
            ]
        v = [[0] * sizes[k + 1] for k in range(n_layers)]
        s = [[0] * sizes[k + 1] for k in range(n_layers)]
        window = [[0] * sizes[k + 1] for k in range(n_layers)]  # exact Σ_t I
        counts = [[0] * sizes[k + 1] for k in range(n_layers)]
        p.membrane = [[] for _ in range(n_layers)]
        p.spikes = [[] for _ in range(n_layers)]
        first_current: list[int] = []
        for t in range(steps):
            inp = trains[t]
            for k in range(n_layers):
                n_out, theta = sizes[k + 1], spec.thresholds[k]
                if k == 0 and spec.encoding == "intensity" and spec.conv_channels == 0:
                    if t == 0:  # constant current: integrated once, at t = 1
                        first_current = self._integrate(0, inp, multibit=True)
                    current = first_current
                else:
                    current = self._integrate(k, inp, multibit=False)
                new_s = []
                for j in range(n_out):
                    old = v[k][j]
                    leak = old >> spec.leak_shift if spec.leak_shift > 0 else 0
                    v[k][j] = sat(old - leak + current[j] - theta * s[k][j], spec.membrane_bits)
                    new_s.append(1 if v[k][j] > theta else 0)
                    window[k][j] += current[j]
                    counts[k][j] += new_s[j]
                s[k] = new_s
                self._count(
                    adds=4 * n_out,
                    compares=n_out,
                    state_reads=n_out,
                    state_writes=n_out,
                    cycles=spec.blocks(n_out),
                )
                p.membrane[k].append(list(v[k]))
                p.spikes[k].append(list(new_s))
                inp = new_s
        p.current = [[sat(z, spec.acc_bits) for z in window[k]] for k in range(n_layers)]
        p.out = counts
        p.activity = [first_activity] + [list(counts[k]) for k in range(n_layers - 1)]
        return p

    def _conv_current(self, inp: list[int]) -> list[int]:
        """The front end's currents, event by event: each nonzero input adds `K · x` to every
        neuron whose kernel window covers it; counters per tap and per kernel word."""
        spec = self.spec
        _, height, width = spec.image_shape
        k, stride, out_channels = spec.conv_kernel, spec.conv_stride, spec.conv_channels
        rows, cols = (height - k) // stride + 1, (width - k) // stride + 1
        current = [0] * (out_channels * rows * cols)
        taps = words = 0
        for i in range(len(inp)):
            if inp[i] == 0:
                continue
            c, y, x = i // (height * width), (i // width) % height, i % width
            for oy in range(rows):
                for ox in range(cols):
                    dy, dx = y - oy * stride, x - ox * stride
                    if not (0 <= dy < k and 0 <= dx < k):
                        continue
                    words += spec.blocks(out_channels)
                    for o in range(out_channels):
                        current[(o * rows + oy) * cols + ox] += self._kernels[o][c][dy][dx] * inp[i]
                        taps += 1
        multibit = spec.encoding == "intensity"
        self._count(
            syn_ops=taps, adds=taps, mults=taps if multibit else 0, weight_reads=words, cycles=words
        )
        return current

    def _front_end(self, trains: list[list[int]], p: Pass) -> list[list[int]]:
        """The front end's spike trains `[t][j]` from the input trains (contract §3)."""
        spec = self.spec
        _, height, width = spec.image_shape
        k, stride = spec.conv_kernel, spec.conv_stride
        positions = ((height - k) // stride + 1) * ((width - k) // stride + 1)
        n = spec.conv_channels * positions
        theta = spec.conv_threshold
        v, s = [0] * n, [0] * n
        out = []
        for t in range(spec.time_steps):
            if t == 0 or spec.encoding == "spikes":  # intensity: a constant current
                current = self._conv_current(trains[t])
            new_s = []
            for j in range(n):
                old = v[j]
                leak = old >> spec.leak_shift if spec.leak_shift > 0 else 0
                v[j] = sat(old - leak + current[j] - theta * s[j], spec.membrane_bits)
                new_s.append(1 if v[j] > theta else 0)
            s = new_s
            self._count(
                adds=3 * n,
                compares=n,
                state_reads=n,
                state_writes=n,
                cycles=positions * spec.blocks(spec.conv_channels),
            )
            p.conv_current.append(list(current))
            p.conv_membrane.append(list(v))
            p.conv_spikes.append(list(new_s))
            out.append(new_s)
        return out

    def _forward_hardtanh(self, x: list[int]) -> Pass:
        spec = self.spec
        limit = spec.activation_max
        p = Pass()
        inp = list(x)
        for k in range(len(spec.layer_sizes) - 1):
            p.activity.append(list(inp))
            z = self._integrate(k, inp, multibit=True)
            a = []
            for j in range(len(z)):
                shifted = z[j] >> spec.act_shifts[k]
                a.append(-limit if shifted < -limit else limit if shifted > limit else shifted)
            n_out = len(z)
            self._count(
                compares=2 * n_out,
                state_reads=n_out,
                state_writes=n_out,
                cycles=spec.blocks(n_out),
            )
            p.current.append(z)
            p.out.append(a)
            inp = a
        return p

    # -- learning (contract §4–§7) --------------------------------------------------------

    def _post_factors_drtp(self, p: Pass, label: int, k: int) -> list[int]:
        """`p_k,j` of DRTP (§6): the output error, or a gated row of the projection."""
        spec = self.spec
        n_layers = len(spec.layer_sizes) - 1
        target = spec.time_steps if spec.spiking else spec.activation_max
        if k == n_layers - 1:
            out = p.out[k]
            return [(target if c == label else 0) - out[c] for c in range(spec.classes)]
        row = projection_row(spec, k, label)
        factors = []
        for j in range(spec.hidden[k]):
            z = p.current[k][j]
            if spec.spiking:
                bound = spec.time_steps * spec.thresholds[k]
                gate = 1 if -bound < z < bound else 0
            else:
                shifted = z >> spec.act_shifts[k]
                gate = 1 if -spec.activation_max < shifted < spec.activation_max else 0
            factors.append(int(row[j]) * gate)
        return factors

    def _learn(self, p: Pass, label: int) -> None:
        spec = self.spec
        sizes, lanes = spec.layer_sizes, spec.lanes
        n_layers = len(sizes) - 1
        lfp = spec.rule == "lfp"
        stochastic = spec.rounding == "stochastic"
        count = self.counters.add
        if lfp:
            true, other = reward_tables(spec)
            reward = [
                int(true[p.out[-1][c]]) if c == label else int(other[p.out[-1][c]])
                for c in range(spec.classes)
            ]
            count("learning", table_reads=spec.classes)
        else:
            count("learning", adds=spec.classes)
        for k in reversed(range(n_layers)):
            n_in, n_out = sizes[k], sizes[k + 1]
            activity = p.activity[k]
            w = self._w[k]
            if lfp:
                post = [reward_per_current(reward[j], p.current[k][j], spec) for j in range(n_out)]
                count("learning", adds=n_out, mults=n_out, table_reads=n_out)
                shift = spec.q_frac + spec.lr_shifts[k]
            else:
                post = self._post_factors_drtp(p, label, k)
                shift = spec.lr_shifts[k]
                if k < n_layers - 1:
                    count("learning", compares=2 * n_out)
                    if spec.projection == "rom":
                        count("learning", proj_reads=spec.blocks(n_out))
                    else:
                        count("learning", lfsr_draws=n_out)
            below = [0] * n_in  # LFP: Σ_j W_k[i, j] · q_j through the old weights
            words = rows = 0
            for i in self._visit_order(k):
                if activity[i] == 0:
                    continue
                row_visited = False
                for b in range(spec.blocks(n_out)):
                    real = range(b * lanes, min(b * lanes + lanes, n_out))
                    if all(post[j] == 0 for j in real):
                        continue
                    words += 1
                    row_visited = True
                    draws = []
                    if stochastic:
                        for _ in range(lanes):
                            self.lfsr_state = step(self.lfsr_state, self._lfsr)
                            draws.append(self.lfsr_state)
                    for lane, j in enumerate(real):
                        old = w[i][j]
                        if lfp:
                            product = abs(old) * activity[i] * post[j]
                            if k > 0:
                                below[i] += old * post[j]
                        else:
                            product = post[j] * activity[i]
                        delta = round_shift(
                            product, shift, spec.rounding, draws[lane] if stochastic else 0
                        )
                        w[i][j] = sat(old + delta, spec.weight_bits)
                        count(
                            "learning",
                            syn_ops=1,
                            adds=1 + (spec.rounding != "floor") + (lfp and k > 0),
                            mults=(2 + (k > 0)) if lfp else int(k == n_layers - 1),
                        )
                if row_visited:
                    rows += 1
            count(
                "learning",
                weight_reads=words,
                weight_writes=words,
                lfsr_draws=lanes * words if stochastic else 0,
                state_reads=n_in + n_out,
                cycles=words + spec.blocks(n_out) + spec.blocks(n_in),
            )
            if lfp and k > 0:
                count("learning", mults=rows, state_writes=rows)
                reward = [
                    sat(
                        (activity[i] * sat(below[i], spec.acc_bits)) >> spec.q_frac,
                        spec.reward_bits,
                    )
                    for i in range(n_in)
                ]
