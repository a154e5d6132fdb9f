from dataclasses import replace

import numpy as np

from quant.spec import CoreSpec
from quant.tables import projection_rom, projection_row, projection_seed, recip_table, reward_tables

SPEC = CoreSpec("t", 16, (40, 24), 5, thresholds=(9, 9, 9), lr_shifts=(1, 1, 1))


def test_projection_rows_are_signs_fixed_by_the_seed():
    rom = projection_rom(SPEC, 0)
    assert rom.shape == (5, 40)
    assert set(np.unique(rom)) == {-1, 1}
    assert np.array_equal(rom[3], projection_row(SPEC, 0, 3))
    assert len({tuple(row) for row in rom}) == 5  # labels select different rows
    other = projection_rom(replace(SPEC, projection_seed=2), 0)
    assert not np.array_equal(rom, other)
    seeds = {projection_seed(SPEC, k, c) for k in range(2) for c in range(5)}
    assert len(seeds) == 10 and all(1 <= s < 2**32 for s in seeds)


def test_reciprocal_table_error_is_below_its_bound():
    for m in range(0, 7):
        table = recip_table(m)
        mantissas = np.arange(1 << m, 1 << (m + 1))
        # 1/mantissa ≈ table · 2^−(2m+1); relative error of the rounded entry
        error = np.abs(table * mantissas / 2 ** (2 * m + 1) - 1)
        assert error.max() <= 2.0 ** -(m + 1)


def test_reward_tables_follow_eq_a4():
    spec = replace(SPEC, rule="lfp", time_steps=6, thresholds=(9, 9, 9))
    true, other = reward_tables(spec)
    assert true.shape == other.shape == (7,)
    assert (true > 0).all() and np.all(np.diff(true) < 0)  # less reward the more it fires
    assert other[0] == 0 and (other[1:] < 0).all()  # silent wrong classes are left alone
    sigma = 1 / (1 + np.exp(-(0 - 3)))
    assert true[0] == np.floor(6 * (1 - sigma) * 256 + 0.5)
