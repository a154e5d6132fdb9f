"""The analytical ECP5 estimate: structural counts against stored place-and-route results,
the calibration reproduced, sizes that grow with the spec."""

import gzip
from dataclasses import replace
from pathlib import Path

from hw_reports.estimate import (
    CALIBRATION,
    _rates,
    bank_register_bits,
    brams,
    calibration_specs,
    estimate,
    in_block_ram,
    lutram,
)
from hw_reports.fpga import parse_cells, parse_nextpnr_report
from quant.spec import load_spec
from rtl.core import MemoryInfo, memories

DATA = Path(__file__).parent / "data"
DIGITS = load_spec("configs/digits.toml")


def test_block_ram_takes_the_cheapest_aspect_ratio() -> None:
    assert brams(MemoryInfo("weights0", 64, 10192)) == 40  # 2 × 20 at 36 × 512
    assert brams(MemoryInfo("inputs", 4, 784)) == 1  # 4 × 4096
    assert brams(MemoryInfo("events_in", 18, 784)) == 1  # 18 × 1024: base 14 + code 4
    assert lutram(MemoryInfo("state0", 584, 13)) == 146


def test_banked_memories_cost_their_registers_and_no_blocks() -> None:
    """MNIST's layer 1 in five banks: the 14-bit read address of its 10192 words, 5 × 64
    word bits and twice the 3-bit bank read; the write's 11-bit in-bank address and 64-bit
    word, and 5 × 8 lane enables; as many DP16KD as one 10192-word memory (the last bank's
    2000 words fill 8 as well)."""
    mnist = load_spec("configs/mnist.toml")
    assert bank_register_bits(DIGITS) == 0
    assert bank_register_bits(mnist) == 14 + 5 * 64 + 2 * 3 + 11 + 64 + 5 * 8
    banks = [m for m in memories(mnist) if m.array == "weights0"]
    assert sum(brams(m) for m in banks) == brams(MemoryInfo("weights0", 64, 10192))


def test_dsp_and_bram_match_place_and_route_of_digits() -> None:
    with gzip.open(DATA / "digits_ecp5_report.json.gz", "rt") as report:
        placed = parse_nextpnr_report(report.read())
    guess = estimate(DIGITS)
    assert guess.dsps == placed.used("MULT18X18D")
    assert guess.brams == placed.used("DP16KD")
    assert abs(guess.lutram - placed.used("TRELLIS_RAMW")) <= 0.05 * guess.lutram


def test_calibration_cores_are_reproduced() -> None:
    for rule, spec in calibration_specs().items():
        guess = estimate(spec)
        assert (guess.luts, guess.flip_flops) == tuple(CALIBRATION[rule].values())


def test_lfp_dsps_match_synthesis_of_its_calibration_core() -> None:
    """Only LFP's products take DSPs: 6 tiles per lane and layer and 2 for the reward."""
    cells = parse_cells(gzip.decompress((DATA / "digits_lfp_ecp5_stat.json.gz").read_bytes()))
    assert estimate(calibration_specs()["lfp"]).dsps == cells["MULT18X18D"] == 98


def test_learning_and_width_cost_resources() -> None:
    base = estimate(DIGITS)
    assert estimate(DIGITS.inference_only()).luts < base.luts
    lfp = estimate(replace(DIGITS, rule="lfp"))
    assert lfp.dsps > base.dsps == 0
    assert lfp.luts > base.luts
    wide = estimate(replace(DIGITS, lanes=16))
    assert wide.luts > base.luts
    assert estimate(replace(DIGITS, lanes=16, rule="lfp")).dsps > lfp.dsps


def test_estimate_does_not_depend_on_the_working_directory(tmp_path, monkeypatch) -> None:
    expected = estimate(DIGITS)
    _rates.cache_clear()
    monkeypatch.chdir(tmp_path)
    assert estimate(DIGITS) == expected


def test_memories_go_where_yosys_prices_them_lower() -> None:
    """A memory takes block RAM when its blocks cost Yosys less than its LUT-RAM cells: the
    MNIST core's 98-word input memory does (1 block against 56 cells), digits' 8-word one
    and its 13-word neuron state (146 cells, 17 blocks) do not."""
    assert in_block_ram(MemoryInfo("inputs", 32, 98))
    assert not in_block_ram(MemoryInfo("inputs", 32, 8))
    assert not in_block_ram(MemoryInfo("state0", 584, 13))
    assert in_block_ram(MemoryInfo("weights1", 64, 200))
