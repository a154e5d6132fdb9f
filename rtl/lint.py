"""Verilator lint of the generated Verilog, with every waiver named and justified.

The Verilog is written by Amaranth's Yosys back end, whose idioms trip Verilator's style
rules although their meaning is exact: Amaranth values have explicit widths and the back end
relies on Verilog's defined extension rules. Each waiver below matches one such idiom and no
more, so any other warning (an undriven net, a latch, a multi-driven signal) still fails."""

import os
import subprocess
from pathlib import Path

from quant.atomic import atomic_write_text
from rtl.simulators import simulator_env

# (rule, message pattern or "*", why the generated code is correct anyway)
WAIVERS: tuple[tuple[str, str, str], ...] = (
    (
        "WIDTHEXPAND",
        "*",
        "operands are zero- or sign-extended by Verilog's rules, as the back end intends",
    ),
    (
        "WIDTHTRUNC",
        "*Logical operator LOGNOT expects 1 bit*",
        "`!x` is the back end's spelling of `x == 0` for a multi-bit x",
    ),
    (
        "WIDTHTRUNC",
        "*Assign RHS's SHIFTR generates*",
        "array elements are selected by shifting the packed array and keeping the low bits",
    ),
    (
        "CASEINCOMPLETE",
        "*",
        "every case statement follows a default assignment of the same signal",
    ),
    (
        "PROCASSINIT",
        "*",
        "registers carry their reset value as an initial value and are assigned in a process",
    ),
    (
        "ASCRANGE",
        "*bit range: [-1:0]*",
        "zero-width signals (a one-entry memory's address, a one-lane selector) are declared so",
    ),
    ("UNUSEDSIGNAL", "*", "named intermediates and unused struct fields are kept for debugging"),
    ("DECLFILENAME", "*", "one file holds the top module and its submodules"),
)


def waiver_config() -> str:
    """The waivers as a Verilator configuration file (`.vlt`)."""
    lines = ["`verilator_config"]
    for rule, match, _ in WAIVERS:
        suffix = "" if match == "*" else f' -match "{match}"'
        lines.append(f'lint_off -rule {rule} -file "*"{suffix}')
    return "\n".join(lines) + "\n"


def write_waivers(directory: str | Path) -> Path:
    """Write the waiver file next to a build, for Verilator to read before the sources."""
    path = Path(directory) / "waivers.vlt"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, waiver_config())
    return path.resolve()  # the simulator builds in its own working directory


def lint(source: str | Path, top: str, work_dir: str | Path) -> list[str]:
    """Warnings and errors `verilator --lint-only -Wall` reports beyond the waivers."""
    env = simulator_env("verilator")
    waivers = write_waivers(work_dir)
    result = subprocess.run(
        ["verilator", "--lint-only", "-Wall", str(waivers), str(source), "--top-module", top],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    return [line for line in result.stderr.splitlines() if line.startswith("%")]
