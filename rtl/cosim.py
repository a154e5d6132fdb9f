"""The co-simulation harness: build the core's Verilog and run a cocotb bench against it."""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rtl.lint import write_waivers
from rtl.simulators import simulator_env


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
    """Build `source` for `sim` and run the cocotb `test_module` against `top`.

    Waveforms are dumped with `waves` or the environment variable `WAVES=1`."""
    from cocotb_tools.runner import get_results, get_runner

    env = simulator_env(sim)
    os.environ.update(env)  # the runner spawns the build tools from this process
    runner = get_runner(sim)
    waves = waves or os.environ.get("WAVES") == "1"
    # Lint runs with the build: a warning beyond the documented waivers fails it.
    build_args = ["-Wall", str(write_waivers(build_dir)), "-O3"]
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
