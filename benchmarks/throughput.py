"""Golden-model training throughput against the float torch rule, side by side.

    python -m benchmarks.throughput          # writes docs/results/throughput.{json,md}

For digits and MNIST-5k and for DRTP and LFP, one online epoch of on-chip learning in the
golden model (the shipped 8-bit specs, as `benchmarks.chip` runs them) and one epoch of the
float rule on the same topology at batch size 1 (`benchmarks.chip.FLOAT`: DRTP on a tanh
MLP, window LFP on the snnTorch LIF network), alternated in one process, `--repeats`
times each; the table has the median samples per second of each and their ratio, so the
comparison holds on a busy machine. Single-threaded (OMP_NUM_THREADS=1 is set for torch).
"""

import argparse
import statistics
import sys
from pathlib import Path

import torch

from benchmarks.chip import FLOAT, chip_spec
from benchmarks.common import Datasets
from hw_reports.markdown import markdown_table
from quant.atomic import atomic_write_json, atomic_write_text
from sim.chip.params import initial_weights
from sim.chip.train import ChipTrainConfig, train_chip
from sim.train import TrainConfig, train


def golden_rate(data: str, rule: str, datasets: Datasets, seed: int) -> float:
    spec = chip_spec(data, rule)
    dataset = datasets.get(TrainConfig(data=data))
    config = ChipTrainConfig(data=data, epochs=1, seed=seed)
    result = train_chip(
        spec, config, progress=False, dataset=dataset, weights=initial_weights(spec, "random", seed)
    )
    return result.samples_per_epoch / result.final.seconds


def float_rate(data: str, rule: str, datasets: Datasets, seed: int) -> float:
    config = TrainConfig(
        topology="FC_100_FC_10",
        data=data,
        epochs=1,
        batch_size=1,
        optimizer="sgd",
        seed=seed,
        track_alignment=False,
        **FLOAT[rule],
    )
    dataset = datasets.get(config)
    result = train(config, progress=False, dataset=dataset)
    return len(dataset.y_train) / result.final.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="docs/results", help="where throughput.* go")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    datasets = Datasets()
    rows = []
    for data in ("digits", "mnist5k"):
        for rule in ("drtp", "lfp"):
            golden, floats = [], []
            for seed in range(args.repeats):
                print(f"{data} {rule} repeat {seed}", file=sys.stderr, flush=True)
                golden.append(golden_rate(data, rule, datasets, seed))
                floats.append(float_rate(data, rule, datasets, seed))
            g, f = statistics.median(golden), statistics.median(floats)
            rows.append(
                {"data": data, "rule": rule, "golden": golden, "float": floats, "ratio": g / f}
            )
    table = markdown_table(
        ["data", "rule", "golden samples/s", "float torch samples/s (batch 1)", "golden / float"],
        [
            [
                r["data"],
                r["rule"],
                f"{statistics.median(r['golden']):.0f}",
                f"{statistics.median(r['float']):.0f}",
                f"{r['ratio']:.2f}",
            ]
            for r in rows
        ],
    )
    out = Path(args.out)
    atomic_write_json(out / "throughput.json", {"repeats": args.repeats, "rows": rows})
    header = (
        "# Golden-model throughput against the float rule (batch 1)\n\n"
        f"Median of {args.repeats} alternated epochs each, one thread "
        "(`python -m benchmarks.throughput`).\n\n"
    )
    atomic_write_text(out / "throughput.md", header + table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
