"""The slow reference against small cases worked out by hand from the hardware contract,
so that a disagreement with the golden model can be blamed on the right side."""

import pytest

from quant.counters import KINDS
from quant.spec import CoreSpec
from quant.tables import recip_table, reward_tables

from .reference import (
    ReferenceCore,
    argmax_with_ties,
    reciprocal,
    reward_per_current,
    round_shift,
    sigma_delta,
)


def _lif(**fields: object) -> CoreSpec:
    base: dict[str, object] = dict(
        name="tiny", inputs=1, hidden=(1,), classes=2, input_bits=2, time_steps=5,
        thresholds=(4, 4), membrane_bits=8, acc_bits=16, weight_bits=4, rule="none",
    )  # fmt: skip
    return CoreSpec(**(base | fields))


def test_lif_membrane_subtracts_threshold_one_step_after_the_spike():
    # I = 3 every step, θ = 4: v = 3, 6 (spike), 6 + 3 − 4 = 5 (spike), 5 + 3 − 4 = 4
    # (4 > 4 is false), 4 + 3 = 7 (spike)
    core = ReferenceCore(_lif(), [[[1]], [[1, 0]]])
    out, prediction = core.infer([3])
    assert core.last is not None
    assert [row[0] for row in core.last.membrane[0]] == [3, 6, 5, 4, 7]
    assert [row[0] for row in core.last.spikes[0]] == [0, 1, 1, 0, 1]
    assert core.last.current[0] == [15] and core.last.out[0] == [3]
    # the output layer sees spikes [0, 1, 1, 0, 1] · 1: v = 0, 1, 2, 2, 3, never above 4
    assert out == [0, 0] and core.last.current[1] == [3, 0] and prediction == 0


def test_lif_leak_floors_toward_minus_infinity():
    # leak_shift = 1, I = 3: v = 3, 3 − 1 + 3 = 5 (spike), 5 − 2 + 3 − 4 = 2 (reset one
    # step later), 2 − 1 + 3 = 4, 4 − 2 + 3 = 5 (spike)
    core = ReferenceCore(_lif(leak_shift=1), [[[1]], [[1, 0]]])
    core.infer([3])
    assert core.last is not None
    assert [row[0] for row in core.last.membrane[0]] == [3, 5, 2, 4, 5]
    # negative current, −3 >> 1 = −2: v = −3, −3 + 2 − 3 = −4, −4 + 2 − 3 = −5, then
    # −5 + 3 − 3 = −5 (a fixed point)
    core = ReferenceCore(_lif(leak_shift=1), [[[-1]], [[1, 0]]])
    core.infer([3])
    assert core.last is not None
    assert [row[0] for row in core.last.membrane[0]] == [-3, -4, -5, -5, -5]


def test_lif_membrane_and_current_saturate():
    spec = _lif(inputs=4, membrane_bits=4, thresholds=(7, 7), acc_bits=11, input_bits=4)
    # I = 4 · 7 · 15 = 420 every step; v = sat_4(…) = 7, never above θ = 7
    core = ReferenceCore(spec, [[[7]] * 4, [[1, 0]]])
    core.infer([15] * 4)
    assert core.last is not None
    assert [row[0] for row in core.last.membrane[0]] == [7] * 5
    assert core.last.current[0] == [1023]  # Σ_t I = 2100, saturated once to 11 bits


def test_sigma_delta_counts_match_the_closed_form():
    for bits in range(1, 7):
        for steps in range(1, 9):
            for x in range(1 << bits):
                count = sum(sigma_delta(x, bits, steps))
                assert count == (steps * x + (1 << (bits - 1))) >> bits


@pytest.mark.parametrize("m", range(7))
def test_reciprocal_error(m):
    table = recip_table(m)
    assert len(table) == 1 << m
    for d in range(1, 1 << 13):
        mantissa, e = reciprocal(d, m)
        error = abs(mantissa * d / 2 ** (e + m + 1) - 1)
        if d < 1 << (m + 1):  # the mantissa is exact: only the table's rounding
            assert error < 2.0 ** -(m + 1)
        # truncating d to m + 1 bits adds up to 2^−m: the two together stay below 1.5 · 2^−m
        assert error < 1.5 * 2.0**-m


def test_reward_per_current_by_hand():
    spec = _lif(rule="lfp", lr_shifts=(0, 0), recip_bits=4, q_frac=16, acc_bits=40)
    # Z = 3: d = 4, e = 2, top = 4 << 2 = 16, RECIP[0] = 32, s = 2 + 4 + 1 − 16 = −9
    assert reward_per_current(256, 3, spec) == 256 * 32 << 9
    assert reward_per_current(256, -3, spec) == 256 * 32 << 9
    # Z = 100: d = 101 = 0b1100101, e = 6, top = 101 >> 2 = 25, RECIP[9] = round(512 / 25)
    assert reward_per_current(-7, 100, spec) == -7 * 20 << 5


def test_rounding_modes():
    assert round_shift(-5, 1, "floor") == -3
    assert round_shift(-5, 1, "nearest") == -2 and round_shift(5, 1, "nearest") == 3
    assert round_shift(-5, 0, "nearest") == -5
    assert round_shift(-5, 2, "stochastic", 0b110) == (-5 + 2) >> 2
    assert round_shift(0, 7, "stochastic", (1 << 32) - 1) == 0


def test_ties_go_to_larger_current_then_lower_index():
    assert argmax_with_ties([1, 3, 3], [0, 1, 2]) == 2
    assert argmax_with_ties([3, 3, 1], [2, 2, 9]) == 0


def test_drtp_hardtanh_step_by_hand():
    spec = CoreSpec(
        name="ht", inputs=2, hidden=(), classes=2, input_bits=2, neuron="hardtanh",
        time_steps=1, act_bits=4, act_shifts=(0,), weight_bits=4, acc_bits=16, rule="drtp",
        lr_shifts=(0,),
        rounding="floor", lanes=1,
    )  # fmt: skip
    core = ReferenceCore(spec, [[[6, 5], [3, -1]]])
    # z = [6·2 + 3·1, 5·2 − 1·1] = [15, 9], a = [7, 7] (A = 7): tie, larger Z wins
    out, prediction = core.learn([2, 1], label=0)
    assert (out, prediction) == ([7, 7], 0)
    # e = [7 − 7, 0 − 7] = [0, −7]; Δ[i] = e · x_i: column 1 gets −14 and −7, saturated to −8
    assert core.weights[0].tolist() == [[6, -8], [3, -8]]
    assert core.lfsr_state == spec.seed
    counts = core.counters.as_dict()
    inference = dict.fromkeys(KINDS, 0) | dict(
        syn_ops=4, mults=4, adds=4, compares=4 + 1, weight_reads=4, state_reads=2,
        state_writes=2, cycles=4 + 2 + 2,
    )  # fmt: skip
    # only block 1 has a post factor: words (0, 1) and (1, 1)
    learning = dict.fromkeys(KINDS, 0) | dict(
        syn_ops=2, mults=2, adds=2 + 2, weight_reads=2, weight_writes=2, state_reads=2 + 2,
        cycles=2 + 2 + 2,
    )  # fmt: skip
    assert counts == {"inference": inference, "learning": learning}


def test_stochastic_rounding_draws_lanes_per_visited_word():
    spec = CoreSpec(
        name="ht", inputs=3, hidden=(), classes=3, input_bits=2, neuron="hardtanh",
        time_steps=1, act_bits=4, act_shifts=(0,), weight_bits=6, acc_bits=16, rule="drtp",
        lr_shifts=(4,),
        rounding="stochastic", lanes=2, lfsr_width=8, seed=0xC3,
    )  # fmt: skip
    core = ReferenceCore(spec, [[[0, 0, 0]] * 3])
    core.learn([1, 0, 2], label=2)  # a = 0, e = [0, 0, 7]: block 1 of rows 0 and 2
    # states after 0xC3 (taps 8, 6, 5, 4): 135, 15 | 31, 62; lane 0 takes the first of each
    # word, the padding lane the second: row 0 (7 + (135 & 15)) >> 4 = 0 (15 would give 1),
    # row 2 (14 + (31 & 15)) >> 4 = 1
    assert core.weights[0].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert core.lfsr_state == 62
    assert core.counters.counts["learning"]["lfsr_draws"] == 4
    assert core.counters.counts["learning"]["syn_ops"] == 2


def test_hardtanh_shifts_floor_per_layer():
    spec = CoreSpec(
        name="ht", inputs=1, hidden=(1,), classes=2, input_bits=2, neuron="hardtanh",
        time_steps=1, act_bits=4, act_shifts=(1, 0), weight_bits=4, acc_bits=16, rule="none",
    )  # fmt: skip
    # z = −9, a = clip(−9 >> 1 = −5) = −5; then z = [−10, 5], a = [−7, 5]
    core = ReferenceCore(spec, [[[-3]], [[2, -1]]])
    assert core.infer([3]) == ([-7, 5], 1)
    assert core.last is not None and core.last.current == [[-9], [-10, 5]]


def test_lfp_step_by_hand():
    spec = CoreSpec(
        name="lfp", inputs=1, hidden=(), classes=2, input_bits=2, time_steps=2,
        thresholds=(3,), weight_bits=6, membrane_bits=8, acc_bits=16, rule="lfp",
        lr_shifts=(0,), reward_bits=8, reward_frac=4, recip_bits=2, q_frac=4,
        rounding="floor", lanes=1,
    )  # fmt: skip
    true, other = reward_tables(spec)  # T = 2: 2 (1 − σ(n − 1)), −n (1 − σ(1 − n)), 4 bits
    assert true.tolist() == [23, 16, 9] and other.tolist() == [0, -8, -23]
    core = ReferenceCore(spec, [[[2, -3]]])
    # I = [6, −9]: neuron 0 v = 6, 6 + 6 − 3 = 9 (two spikes, Z = 12); neuron 1 silent, Z = −18
    out, prediction = core.learn([3], label=1)
    assert (out, prediction) == ([2, 0], 0)
    # R = [OTHER[2], TRUE[0]] = [−23, 23]; m = 2, RECIP = [8, 6, 5, 5]
    # q_0: d = 13, e = 3, top = 6, s = 3 + 2 + 1 − 4 = 2: −23 · 5 >> 2 = −29
    # q_1: d = 19, e = 4, top = 4, s = 3: 23 · 8 >> 3 = 23
    # A = T x = 6: Δ = |W| · 6 · q >> 4 = −348 >> 4 = −22 and 414 >> 4 = 25
    assert core.weights[0].tolist() == [[2 - 22, -3 + 25]]
    counts = core.counters.as_dict()
    inference = dict.fromkeys(KINDS, 0) | dict(
        syn_ops=2, mults=2, adds=2 + 16, compares=4 + 1, weight_reads=2, state_reads=4,
        state_writes=4, cycles=2 + 4 + 2,
    )  # fmt: skip
    learning = dict.fromkeys(KINDS, 0) | dict(
        syn_ops=2, mults=4 + 2, adds=2 + 2, weight_reads=2, weight_writes=2, state_reads=3,
        table_reads=2 + 2, cycles=2 + 2 + 1,
    )  # fmt: skip
    assert counts == {"inference": inference, "learning": learning}
