"""What the `margin` learning gate saves: on-chip learning with and without it, same data.

    python -m benchmarks.learning_gate          # writes docs/results/learning_gate.{json,md}
    python -m benchmarks.learning_gate --quick  # one seed, digits only, one epoch

The shipped 8-bit specs learn on chip online (as `benchmarks.chip` runs them: DRTP as
shipped, LFP with its learning-rate shifts) with `learn_gate = "always"` and with the
`margin` gate at several margins. Each run reports the test error, the fraction of training
samples whose learning step ran, and the energy per training sample of the learning step
against that of the inference (the golden model's counters priced with the default table,
over every training sample of every epoch): the learning-energy overhead that the gate
cuts. Runs are cached under `--work`, so an interrupted benchmark resumes.
"""

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.chip import chip_run, chip_spec
from benchmarks.common import Datasets, mean_std
from hw_reports.energy import energy, load_table
from hw_reports.markdown import markdown_table
from quant.atomic import atomic_write_json, atomic_write_text
from rtl.core import memories

GATES: tuple[tuple[str, int], ...] = (
    ("always", 0),
    ("margin", 0),
    ("margin", 2),
    ("margin", 4),
    ("margin", 6),
)


def overhead(data: str, rule: str, gate: tuple[str, int], counters: dict) -> tuple[float, float]:
    """Learning and inference energy per training sample (pJ) of counters per sample."""
    spec = replace(chip_spec(data, rule), learn_gate=gate[0], gate_margin=gate[1])
    report = energy(spec, counters, 1, load_table(), memories(spec))
    return report.phase("learning"), report.phase("inference")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", default="runs/bench_learning_gate", help="finished runs")
    parser.add_argument("--out", default="docs/results", help="where learning_gate.* go")
    args = parser.parse_args(argv)
    seeds = (0,) if args.quick else (0, 1, 2)
    epochs = 1 if args.quick else 3
    data_names = ("digits",) if args.quick else ("digits", "mnist5k")
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    datasets = Datasets()
    rows = []
    for data in data_names:
        for rule in ("drtp", "lfp"):
            for gate in GATES:
                print(f"chip {rule} {data} gate {gate}", file=sys.stderr, flush=True)
                runs = [chip_run(data, rule, 8, s, epochs, work, datasets, gate) for s in seeds]
                energies = [overhead(data, rule, gate, r["counters_per_sample"]) for r in runs]
                last = [
                    overhead(data, rule, gate, r["last_epoch_counters_per_sample"]) for r in runs
                ]
                rows.append(
                    {
                        "data": data,
                        "rule": rule,
                        "learn_gate": gate[0],
                        "gate_margin": gate[1],
                        "test_error": [100 * r["test_error"] for r in runs],
                        "learned_last_epoch": [r["learned_per_epoch"][-1] for r in runs],
                        "learned_all_epochs": [
                            statistics.mean(r["learned_per_epoch"]) for r in runs
                        ],
                        "learning_pj": [e[0] for e in energies],
                        "inference_pj": [e[1] for e in energies],
                        "overhead": [100 * e[0] / e[1] for e in energies],
                        "overhead_last_epoch": [100 * e[0] / e[1] for e in last],
                    }
                )
    table = markdown_table(
        [
            "data",
            "rule",
            "gate",
            "test error %",
            "steps taken, all epochs %",
            "steps taken, last epoch %",
            "learning nJ/sample",
            "inference nJ/sample",
            "learning-energy overhead %",
            "overhead, last epoch %",
        ],
        [
            [
                r["data"],
                r["rule"],
                "always" if r["learn_gate"] == "always" else f"margin {r['gate_margin']}",
                mean_std(r["test_error"]),
                mean_std([100 * v for v in r["learned_all_epochs"]], 1),
                mean_std([100 * v for v in r["learned_last_epoch"]], 1),
                mean_std([v / 1000 for v in r["learning_pj"]]),
                mean_std([v / 1000 for v in r["inference_pj"]]),
                mean_std(r["overhead"], 1),
                mean_std(r["overhead_last_epoch"], 1),
            ]
            for r in rows
        ],
    )
    atomic_write_json(
        out / "learning_gate.json", {"seeds": list(seeds), "epochs": epochs, "rows": rows}
    )
    header = (
        f"# The learning gate: on-chip learning with and without it\n\n"
        f"{len(seeds)} seeds, {epochs} online epochs, 8-bit shipped specs, energy from the "
        f"golden model's counters over every training sample (`python -m "
        f"benchmarks.learning_gate`).\n\n"
    )
    atomic_write_text(out / "learning_gate.md", header + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
