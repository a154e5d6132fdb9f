import numpy as np
import pytest

from quant.errors import ConfigError
from quant.lfsr import MAXIMAL_TAPS, LFSRSpec, LFSRStream, draws, primitive, step


@pytest.mark.parametrize("width", [8, 16])
def test_period_is_maximal_by_brute_force(width):
    spec = LFSRSpec(width, seed=1)
    state, period = step(1, spec), 1
    while state != 1:
        state, period = step(state, spec), period + 1
    assert period == 2**width - 1


@pytest.mark.parametrize("width", sorted(MAXIMAL_TAPS))
def test_every_shipped_polynomial_is_primitive(width):
    assert primitive(MAXIMAL_TAPS[width])


def test_primitivity_check_rejects_known_non_primitive_polynomials():
    assert primitive((4, 3))  # x^4 + x^3 + 1
    assert not primitive((4, 2))  # x^4 + x^2 + 1 = (x^2 + x + 1)^2
    assert not primitive((8, 4))  # x^8 + x^4 + 1 is reducible


def test_draws_are_deterministic_and_continue_from_a_state():
    spec = LFSRSpec(16, seed=0xACE1)
    first, state = draws(spec, 10)
    again, _ = draws(spec, 10)
    assert first.tolist() == again.tolist()
    more, _ = draws(spec, 5, state)
    assert draws(spec, 15)[0].tolist() == first.tolist() + more.tolist()
    assert len(set(first.tolist())) == 10 and 0 not in first


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"width": 16, "seed": 0}, "seed"),
        ({"width": 8, "seed": 256}, "seed"),
        ({"width": 12, "seed": 1}, "width"),
        ({"width": 8, "seed": 1, "taps": (7, 3)}, "taps"),
    ],
)
def test_invalid_specs_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        LFSRSpec(**kwargs)


@pytest.mark.parametrize("width", sorted(MAXIMAL_TAPS))
def test_stream_equals_serial_steps_across_chunks(width):
    spec = LFSRSpec(width, 0xACE1 % (1 << width) or 1)
    stream = LFSRStream(spec)
    chunks = [stream.take(n) for n in (1, 0, 7, 300, 5000)]
    expected, last = draws(spec, sum(map(len, chunks)))
    assert np.array_equal(np.concatenate(chunks), expected)
    assert stream.state == last
    resumed = LFSRStream(spec, int(expected[99]))
    assert np.array_equal(resumed.take(50), expected[100:150])


def test_shipped_widths_are_whole_bytes():
    """`LFSRStream.take` assembles states from 8-bit chunks."""
    assert all(width % 8 == 0 for width in MAXIMAL_TAPS)
