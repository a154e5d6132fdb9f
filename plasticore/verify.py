"""`plasticore verify`: co-simulate the RTL core against the golden model on real samples."""

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quant.atomic import atomic_write
from quant.errors import PlasticoreError
from quant.spec import CoreSpec, spec_to_toml
from rtl.cosim import run_bench
from rtl.emit import TOP, write_core
from sim.chip.params import initial_kernels, initial_weights

BENCH = "plasticore.cosim_bench"


class Mismatch(PlasticoreError):
    """The RTL and the golden model disagree; the message is the first difference."""


@dataclass(frozen=True)
class VerifyReport:
    """What one co-simulation run compared and how fast it ran."""

    spec: CoreSpec
    sim: str
    samples: int
    mismatches: tuple[str, ...]
    rtl_counters: dict
    golden_counters: dict
    sim_seconds: float
    build_seconds: float
    coverage: dict

    def cycles_per_sample(self, phase: str) -> float:
        return self.rtl_counters[phase]["cycles"] / max(1, self.samples)

    def ideal_cycles_per_sample(self, phase: str) -> float:
        """Synaptic operations ÷ lanes: the cycles of a core that never idles a lane."""
        return self.golden_counters[phase]["syn_ops"] / self.spec.lanes / max(1, self.samples)


def _prepare(
    spec: CoreSpec,
    weights: Sequence[np.ndarray],
    build: Path,
    inputs: np.ndarray,
    labels: np.ndarray,
    learn: bool,
    check_every: int,
    kernels: np.ndarray | None = None,
    poison: bool = False,
) -> tuple[Path, dict[str, str]]:
    """Write the core's Verilog and the bench's job; the bench's environment. A front end's
    `kernels` travel in the job: the bench loads them over the bus, as a host does."""
    build.mkdir(parents=True, exist_ok=True)
    source, _ = write_core(spec, build, weights, poison)
    job = build / "job.npz"
    arrays = {f"w{k}": np.asarray(w, dtype=np.int64) for k, w in enumerate(weights)}
    if spec.conv:
        arrays["kernels"] = spec.kernel_array(kernels)
    atomic_write(
        job,
        lambda f: np.savez(
            f,
            spec=np.array(spec_to_toml(spec)),
            inputs=np.asarray(inputs, dtype=np.int64),
            labels=np.asarray(labels, dtype=np.int64),
            learn=np.array(learn),
            check_every=np.array(check_every),
            **arrays,
        ),
    )
    report = build / "report.json"
    report.unlink(missing_ok=True)
    return source, {
        "PLASTICORE_JOB": str(job.resolve()),
        "PLASTICORE_REPORT": str(report.resolve()),
    }


def check_bus(spec: CoreSpec, build_dir: str | Path, sim: str = "verilator") -> bool:
    """Run the bench's register and memory-map test on a core with zero weights."""
    build = Path(build_dir)
    weights = initial_weights(spec, "zero")
    empty = np.zeros((1, spec.inputs), dtype=np.int64)
    kernels = initial_kernels(spec) if spec.conv else None
    source, env = _prepare(spec, weights, build, empty, np.zeros(1), False, 1, kernels)
    run = run_bench(source, TOP, BENCH, build / sim, sim, env, testcase="bus_registers")
    return run.tests == 1 and run.failures == 0


def verify(
    spec: CoreSpec,
    weights: Sequence[np.ndarray],
    inputs: np.ndarray,
    labels: np.ndarray,
    build_dir: str | Path,
    learn: bool = True,
    sim: str = "verilator",
    check_every: int = 1,
    waves: bool = False,
    kernels: np.ndarray | None = None,
    poison: bool = False,
) -> VerifyReport:
    """Run `inputs` (codes) through the RTL core and the golden model; compare everything.

    With `learn`, each sample is followed by a learning step on its label, and every weight
    is compared every `check_every` samples and after the last. A core with the front end
    needs its `kernels`. With `poison`, the core's weight reads that collide with a write
    return garbage (`rtl.block_ram`): equality then also proves none is used."""
    if learn and spec.rule == "none":
        raise PlasticoreError(f"spec {spec.name!r} has rule 'none': verify with learn=False")
    if len(inputs) == 0 or len(inputs) != len(labels):
        raise PlasticoreError("verify needs at least one sample and one label per sample")
    build = Path(build_dir)
    began = time.perf_counter()
    source, env = _prepare(
        spec, weights, build, inputs, labels, learn, check_every, kernels, poison
    )
    report_path = Path(env["PLASTICORE_REPORT"])
    run = run_bench(
        source, TOP, BENCH, build / sim, sim, env, waves, testcase="verify_against_golden"
    )
    if not report_path.exists():
        raise PlasticoreError(f"the bench wrote no report; see {run.build_dir / 'test.log'}")
    data = json.loads(report_path.read_text())
    return VerifyReport(
        spec=spec,
        sim=sim,
        samples=data["samples"],
        mismatches=tuple(data["mismatches"]),
        rtl_counters=data["rtl_counters"],
        golden_counters=data["golden_counters"],
        sim_seconds=data["seconds"],
        build_seconds=time.perf_counter() - began - data["seconds"],
        coverage=data["coverage"],
    )
