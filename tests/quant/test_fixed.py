import numpy as np
import pytest

from quant.errors import ConfigError
from quant.fixed import QFormat, shift_right
from quant.lfsr import LFSRSpec, draws


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8, 12, 16, 24, 32, 62])
def test_saturation_at_the_edges_of_every_width(bits):
    f = QFormat(bits)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert (f.min_int, f.max_int) == (lo, hi)
    got = f.saturate(np.array([lo - 1, lo, lo + 1, -1, 0, 1, hi - 1, hi, hi + 1]))
    assert got.tolist() == [lo, lo, lo + 1, -1, 0, 1, hi - 1, hi, hi]
    u = QFormat(bits, signed=False)
    assert u.saturate(np.array([-5, 0, 2**bits - 1, 2**bits])).tolist() == [
        0,
        0,
        2**bits - 1,
        2**bits - 1,
    ]


def test_quantize_rounds_and_saturates():
    f = QFormat(8, frac=4)  # steps of 1/16, range [-8, 7.9375]
    assert f.quantize([0.03, 0.032, -0.03, 1.5, 100.0, -100.0]).tolist() == [0, 1, 0, 24, 127, -128]
    assert f.quantize([0.06, -0.01], rounding="floor").tolist() == [0, -1]
    assert f.to_float(f.quantize(2.25)) == 2.25


def test_shift_right_deterministic_modes_on_hand_cases():
    x = np.array([-5, -3, -2, -1, 0, 1, 2, 3, 5])
    assert shift_right(x, 1, "floor").tolist() == [-3, -2, -1, -1, 0, 0, 1, 1, 2]
    assert shift_right(x, 1, "nearest").tolist() == [-2, -1, -1, 0, 0, 1, 1, 2, 3]
    assert shift_right(x, 0, "nearest").tolist() == x.tolist()


def test_stochastic_rounding_is_exactly_unbiased_over_all_random_values():
    """Averaged over every r in [0, 2^n), ⌊(x + r) / 2^n⌋ equals x / 2^n exactly."""
    n = 3
    r = np.arange(2**n)
    for x in range(-40, 41):
        rounded = shift_right(np.full(2**n, x), n, "stochastic", r)
        assert rounded.sum() * 1.0 / 2**n == x / 2**n
        assert set(rounded.tolist()) <= {x >> n, (x >> n) + 1}


def test_stochastic_rounding_error_shrinks_with_lfsr_samples():
    x, n = 37, 4  # 37 / 16 = 2.3125, never representable
    bits, _ = draws(LFSRSpec(16, seed=0xACE1), 20_000)
    errors = [
        abs(shift_right(np.full(m, x), n, "stochastic", bits[:m]).mean() - x / 2**n)
        for m in (50, 20_000)
    ]
    assert errors[1] < errors[0]
    assert errors[1] < 0.01
    assert abs(shift_right(np.full(50, x), n, "floor").mean() - x / 2**n) > 0.3  # biased


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"bits": 1}, "bits"), ({"bits": 63}, "bits"), ({"bits": 8, "frac": -1}, "frac")],
)
def test_invalid_formats_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        QFormat(**kwargs)


def test_bad_shift_arguments():
    with pytest.raises(ConfigError, match="random_bits"):
        shift_right(5, 2, "stochastic")
    with pytest.raises(ConfigError, match="shift must be"):
        shift_right(5, -1)
