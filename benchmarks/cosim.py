"""Co-simulation of the RTL core against the golden model: speed, cycles, one full epoch.

    python -m benchmarks.cosim            # ~15 min on two cores; docs/results/cosim.{json,md}
    python -m benchmarks.cosim --quick    # a few samples per case, no epoch

On the shipped digits spec (`configs/digits.toml`, initial random weights, the training
split in order), each case runs the Verilog through cocotb and compares every output,
counter and weight with the golden model:
- simulator speed, Verilator against Icarus on the same samples (samples/s and RTL
  cycles/s of simulation alone, build excluded);
- cycles per sample measured in the RTL against the ideal of the spec (synaptic
  operations ÷ lanes) for inference alone and for inference followed by learning;
- one full epoch of on-chip learning (1,437 images) in Verilator, weights compared every
  `EPOCH_CHECK` samples and after the last, timed end to end including the build;
- the same cycles for the core with the convolutional front end (`configs/digits_conv.toml`,
  kernels of seed 0 loaded over the bus).
"""

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hw_reports.markdown import markdown_table
from plasticore.verify import VerifyReport, verify
from quant.atomic import atomic_write_json, atomic_write_text
from quant.spec import load_spec
from rtl.simulators import SimulatorMissing, simulator_env
from sim.chip.params import initial_kernels, initial_weights
from sim.chip.train import dataset_codes
from sim.data import load_dataset

CONFIGS = Path(__file__).parents[1] / "configs"
SPEC = CONFIGS / "digits.toml"
CONV_SPEC = CONFIGS / "digits_conv.toml"
EPOCH_CHECK = 100


@dataclass(frozen=True)
class Case:
    """One co-simulation run: which simulator, how many samples, learning or not."""

    name: str
    sim: str
    samples: int
    learn: bool
    check_every: int
    spec: Path = SPEC


def cases(quick: bool, train_size: int) -> list[Case]:
    speed = 8 if quick else 40
    chosen = [
        Case("speed-verilator", "verilator", speed, True, speed),
        Case("speed-icarus", "icarus", max(2, speed // 8), True, speed),
        Case("inference-only", "verilator", speed, False, speed),
        Case("conv-front-end", "verilator", speed, True, speed, CONV_SPEC),
    ]
    if not quick:
        chosen.append(Case("epoch", "verilator", train_size, True, EPOCH_CHECK))
    return chosen


def summarise(case: Case, report: VerifyReport, wall: float) -> dict:
    cycles = sum(report.rtl_counters[p]["cycles"] for p in ("inference", "learning"))
    row = {
        "case": case.name,
        "spec": report.spec.name,
        "sim": case.sim,
        "learn": case.learn,
        "samples": report.samples,
        "mismatches": len(report.mismatches),
        "first_mismatch": report.mismatches[0] if report.mismatches else None,
        "build_s": round(report.build_seconds, 1),
        "sim_s": round(report.sim_seconds, 1),
        "wall_s": round(wall, 1),
        "samples_per_s": round(report.samples / report.sim_seconds, 2),
        "cycles_per_s": round(cycles / report.sim_seconds),
    }
    for phase in ("inference", "learning"):
        measured = report.cycles_per_sample(phase)
        ideal = report.ideal_cycles_per_sample(phase)
        row[phase] = {
            "cycles_per_sample": round(measured, 1),
            "ideal_per_sample": round(ideal, 1),
            "lane_utilisation": round(ideal / measured, 3) if measured else None,
        }
    return row


def markdown(rows: list[dict]) -> str:
    headers = [
        "case", "spec", "sim", "samples", "mismatches", "build s", "sim s", "samples/s", "cycles/s",
        "inference cycles (ideal, util.)", "learning cycles (ideal, util.)",
    ]  # fmt: skip

    def phase(row: dict, name: str) -> str:
        p = row[name]
        if not p["cycles_per_sample"]:
            return "–"
        return f"{p['cycles_per_sample']:.0f} ({p['ideal_per_sample']:.0f}, " + (
            f"{100 * p['lane_utilisation']:.0f} %)"
        )

    table = [
        [
            r["case"], r["spec"], r["sim"], str(r["samples"]), str(r["mismatches"]),
            f"{r['build_s']:.0f}", f"{r['sim_s']:.0f}", f"{r['samples_per_s']:.2f}",
            f"{r['cycles_per_s']:,}",
            phase(r, "inference"), phase(r, "learning"),
        ]
        for r in rows
    ]  # fmt: skip
    return markdown_table(headers, table)


def render(result: dict) -> str:
    """The results page: the table and how to read it."""
    return (
        "# Co-simulation: RTL core against the golden model\n\n"
        "Produced by `python -m benchmarks.cosim` on two cores. Every run compares the "
        "prediction, outputs and every hardware counter except cycles after each sample, "
        "and every weight every "
        f"{result['epoch_check_every']} samples and after the last (the speed cases: after "
        "the last). *sim s* is simulation alone (the build is separate); *cycles/s* counts "
        "RTL clock cycles, inference and learning together. Cycles per sample are measured "
        f"in the RTL; the ideal is synaptic operations ÷ {result['lanes']} lanes, so the "
        "utilisation is the share of cycles in which every lane does a synaptic "
        "operation.\n\n"
        + markdown(result["runs"])
        + "\n"
        + "".join(
            f"\n{r['case']}: {r['samples']} samples in {r['wall_s'] / 60:.1f} min end to end "
            f"(build included), {r['mismatches']} mismatches.\n"
            for r in result["runs"]
            if r["case"] == "epoch"
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few samples, no epoch")
    parser.add_argument("--out", default="docs/results", help="where cosim.{json,md} go")
    parser.add_argument("--work", default=None, help="build directory (default: temporary)")
    args = parser.parse_args(argv)

    dataset = load_dataset("digits", seed=0)
    work = Path(args.work or tempfile.mkdtemp(prefix="plasticore-cosim-"))
    rows = []
    for case in cases(args.quick, len(dataset.y_train)):
        spec = load_spec(case.spec)
        x, _ = dataset_codes(spec, dataset)
        try:
            simulator_env(case.sim)
        except SimulatorMissing as missing:
            print(f"{case.name}: skipped ({missing})", file=sys.stderr)
            continue
        print(f"{case.name}: {case.samples} samples in {case.sim} ...", file=sys.stderr)
        began = time.perf_counter()
        report = verify(
            spec,
            initial_weights(spec),
            x[: case.samples],
            dataset.y_train[: case.samples],
            work / case.name,
            learn=case.learn,
            sim=case.sim,
            check_every=case.check_every,
            kernels=initial_kernels(spec) if spec.conv else None,
        )
        rows.append(summarise(case, report, time.perf_counter() - began))
        print(markdown(rows[-1:]), file=sys.stderr)
    out = Path(args.out)
    stem = "cosim-quick" if args.quick else "cosim"
    lanes = load_spec(SPEC).lanes
    result = {"lanes": lanes, "epoch_check_every": EPOCH_CHECK}
    result["runs"] = rows
    atomic_write_json(out / f"{stem}.json", result)
    atomic_write_text(out / f"{stem}.md", render(result))
    print(markdown(rows))
    return 1 if any(r["mismatches"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
