"""A bitstream for a board: the core behind its UART bridge, placed, routed and packed.

The board top (`rtl.board`) is rendered through the amaranth-boards platform's build plan,
so its pins and clock constraint come from the board file. Synthesis and place and route are
`implement_ecp5`'s, with the LPF; `ecppack` turns the routed configuration into the `.bit`
that `openFPGALoader -b ulx3s` loads (compressed, as the board's platform packs it).
"""

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw_reports.fpga import ECP5_PACKAGE, Ecp5Result, implement_ecp5
from hw_reports.synth import publish, run_tool, staging
from quant.atomic import atomic_write_json, atomic_write_text
from quant.errors import ConfigError
from quant.spec import CoreSpec
from rtl.board import (
    BOARD_TOP,
    DEFAULT_BAUD,
    DEFAULT_BOARD,
    BoardSources,
    board_platform,
    board_sources,
)

# amaranth-boards' package and speed names that `implement_ecp5`'s placement matches.
PLACED_PACKAGE, PLACED_SPEED = "BG381", "6"


@dataclass(frozen=True)
class Bitstream:
    """A built bitstream, the sources it came from and how the design fits its device."""

    board: str
    bitstream: Path
    verilog: Path
    lpf: Path
    implementation: Ecp5Result
    pack_seconds: float
    seconds: float  # the whole build, elaboration included

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "bitstream": self.bitstream.name,
            "bitstream_bytes": self.bitstream.stat().st_size,
            "verilog": self.verilog.name,
            "lpf": self.lpf.name,
            "implementation": self.implementation.to_json(),
            "pack_seconds": self.pack_seconds,
            "seconds": self.seconds,
        }


def _ecp5_device(sources: BoardSources) -> str:
    """`implement_ecp5`'s device name ("85k") of a board's LFE5U-85F."""
    if (sources.package, sources.speed) != (PLACED_PACKAGE, PLACED_SPEED):
        raise ConfigError(
            f"board {sources.board}: package {sources.package} speed {sources.speed}; "
            f"place and route targets {ECP5_PACKAGE} speed {PLACED_SPEED} only"
        )
    return sources.device.removeprefix("LFE5U-").removesuffix("F").lower() + "k"


def build_bitstream(
    spec: CoreSpec,
    out_dir: str | Path,
    board: str = DEFAULT_BOARD,
    weights: Sequence[np.ndarray] | None = None,
    baud: int = DEFAULT_BAUD,
    timeout_s: float | None = None,
    progress: bool = True,
) -> Bitstream:
    """Build `<out>/plasticore_board.bit` for `spec` on `board`; keeps the top's Verilog and
    LPF, the tool logs and reports, and writes the summary `bitstream.json` there. Every
    file appears whole or not at all. Fmax is reported whether or not the board clock is met."""
    start = time.perf_counter()

    def say(message: str) -> None:
        if progress:
            print(f"  {message}", file=sys.stderr)

    board_platform(board)  # an unknown board is refused before any work
    say(f"elaborating the {board} top for {spec.name}")
    sources = board_sources(spec, board, weights, baud)
    device = _ecp5_device(sources)
    out = Path(out_dir)
    verilog = atomic_write_text(out / f"{BOARD_TOP}.v", sources.verilog)
    lpf = atomic_write_text(out / f"{BOARD_TOP}.lpf", sources.lpf)
    say(f"synthesis, place and route on {sources.device} (minutes)")
    implementation = implement_ecp5(
        verilog, out, device, sources.clock_hz / 1e6, BOARD_TOP, timeout_s, lpf
    )
    say(f"placed and routed: Fmax {implementation.fmax_mhz} MHz; packing the bitstream")
    name = f"{BOARD_TOP}.bit"
    with staging(out) as (work, scratch):
        # The tool sees its working folder only; the configuration (megabytes of text, all
        # of it in the .bit) goes with the scratch folder.
        os.replace(work / "ecp5.config", scratch / "ecp5.config")
        args = ["--compress", "--input", "ecp5.config", "--bit", name]
        pack_s = run_tool("yowasp-ecppack", args, scratch, "ecppack.log", timeout_s)
        publish(scratch, work, [name, "ecppack.log"])
    result = Bitstream(
        board,
        out / name,
        verilog,
        lpf,
        implementation,
        pack_s,
        time.perf_counter() - start,
    )
    atomic_write_json(out / "bitstream.json", result.to_json())
    say(f"{result.bitstream} ({result.seconds:.0f} s)")
    return result
