"""The `plasticore` command line.

Every user error (bad argument, bad file, bad configuration) prints one line on stderr
and exits with status 2; an interrupted training run exits with 130 and can be resumed.
"""

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hw_reports.markdown import markdown_table
from quant.counters import KINDS, PHASES
from quant.errors import PlasticoreError
from quant.spec import load_spec
from rtl.board import BOARDS, DEFAULT_BAUD, DEFAULT_BOARD
from sim.chip.params import INITS, load_kernels, load_params
from sim.chip.train import ChipResult, ChipTrainConfig, train_chip
from sim.data import DATASET_NAMES
from sim.rules import RULES, SNN_RULES
from sim.train import LR_SCHEDULES, OPTIMIZERS, TrainConfig, TrainResult, train

# The main job's spec: the small shipped core (64-100-10 LIF on the bundled 8x8 digits).
MAIN_SPEC = Path(__file__).parents[1] / "configs" / "digits.toml"

# `compare-rules`: every float rule side by side on the bundled 8x8 digits, about a
# minute on a laptop. LFP maximises a reward summed over the minibatch, so it takes SGD
# with momentum as in its paper.
DEMO = TrainConfig(
    topology="FC_100_FC_10", data="digits", epochs=20, batch_size=20, lr=1e-3, seed=0
)
DEMO_OVERRIDES: dict[str, dict[str, object]] = {
    "shallow": {"lr": 1e-2},
    "lfp": {"lr": 1e-2, "optimizer": "sgd", "momentum": 0.9},
    "dp": {"hidden_activation": "relu"},
    "dpt": {"hidden_activation": "relu"},
    "frfb": {"hidden_activation": "hardtanh", "optimizer": "sgd", "lr": 0.05},
    "urfb": {"hidden_activation": "hardtanh", "optimizer": "sgd", "lr": 0.05},
    "dtp": {"lr": 3e-3},
    "fwdtp": {"lr": 3e-3},
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fmt_pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _fmt_angle(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def result_table(results: Sequence[TrainResult]) -> str:
    """Final-epoch results of several runs as a Markdown table."""
    hidden = max((len(r.final.angles or ()) for r in results), default=0)
    headers = ["rule", "topology", "data", "test err %", "train err %", "s/epoch"]
    headers += [f"angle L{k + 1} (°)" for k in range(hidden)]
    rows = []
    for r in results:
        f = r.final
        seconds = sum(h.seconds for h in r.history) / len(r.history)
        angles = list(f.angles or ()) + [math.nan] * (hidden - len(f.angles or ()))
        rows.append(
            [
                r.config.rule,
                r.config.topology,
                r.config.data,
                _fmt_pct(f.test_error),
                _fmt_pct(f.train_error),
                f"{seconds:.2f}",
                *map(_fmt_angle, angles),
            ]
        )
    return markdown_table(headers, rows)


def _run(args: argparse.Namespace) -> int:
    """The whole flow on the small shipped spec: learn on chip in the golden model, write
    the Verilog, co-simulate it against the golden model, report what learning costs."""
    from hw_reports.report import ReportConfig, build_report
    from rtl.emit import write_core

    spec, out = load_spec(MAIN_SPEC), Path(args.out)
    progress = not args.quiet
    print(f"1/4 on-chip learning in the golden model: {spec.name}, {args.epochs} epoch(s)")
    chip = train_chip(
        spec, ChipTrainConfig(data="digits", epochs=args.epochs), out / "chip", progress=progress
    )
    print(
        f"    online train error {100 * chip.final.train_error:.2f} %, "
        f"test error {100 * chip.final.test_error:.2f} %"
    )
    weights = chip.core.weights
    source, _ = write_core(spec, out / "rtl", weights)
    print(f"2/4 Verilog and manifest: {source}")
    print(
        f"3/4 co-simulation of {args.cosim_samples} learning samples against the golden model"
        if args.cosim_samples
        else "3/4 co-simulation skipped (--cosim-samples 0)"
    )
    print("4/4 hardware report" + ("" if args.synth else " (no synthesis)"))
    if args.fpga and not args.synth:
        raise PlasticoreError("--fpga needs synthesis: drop --no-synth")
    config = ReportConfig(
        data="digits", cosim_samples=args.cosim_samples, synth=args.synth, fpga=args.fpga
    )
    result = build_report(spec, out / "report", config, weights, progress=progress)
    print((out / "report" / "report.md").read_text())
    cosim = result.get("cosim")
    if cosim and (cosim["mismatches"] or cosim["counter_differences"]):
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from hw_reports.report import ReportConfig, build_report

    spec = load_spec(args.spec)
    weights = load_params(args.params, spec)[0] if args.params else None
    kernels = load_kernels(args.params, spec) if args.params and spec.conv else None
    config = ReportConfig(
        data=args.data,
        data_root=args.data_root,
        samples=args.samples,
        cosim_samples=args.cosim_samples,
        sim=args.sim,
        synth=not args.no_synth,
        fpga=not args.no_fpga,
        table=args.table,
        pnr_seeds=tuple(args.pnr_seeds),
    )
    out = Path(args.out or Path("hw_reports") / spec.name)
    build_report(spec, out, config, weights, progress=not args.quiet, kernels=kernels)
    print((out / "report.md").read_text())
    return 0


def _compare_rules(args: argparse.Namespace) -> int:
    results = []
    for rule in RULES:
        config = TrainConfig(**{**DEMO.__dict__, "rule": rule, **DEMO_OVERRIDES.get(rule, {})})
        print(
            f"training {rule} on {config.data} ({config.topology}, {config.epochs} epochs)",
            file=sys.stderr,
        )
        results.append(train(config, progress=not args.quiet))
    print(result_table(results))
    return 0


# Options of the dual-propagation, random-feedback and target-propagation rules; their
# defaults are TrainConfig's.
RULE_OPTIONS = {
    "dp_alpha": "DP/DP⊤ α in [0, 1]",
    "dp_beta": "DP/DP⊤ nudging strength β",
    "dp_sweeps": "DP/DP⊤ up-and-down sweeps per step",
    "dp_loss": "DP/DP⊤ output loss: mse or ce",
    "dp_damping": "DP damping at α in {0, 1} (0: undamped)",
    "hinge_mu": "URFB/FRFB hinge-loss μ",
    "connectivity": "URFB/FRFB fraction of connections kept",
    "target_step": "DTP/FW-DTP output target step β",
    "feedback_init": "DTP/FW-DTP feedback init: uniform, orthogonal, he_uniform",
    "feedback_scale": "DTP/FW-DTP feedback scale",
    "feedback_steps": "DTP feedback training steps per minibatch",
    "feedback_noise": "DTP reconstruction noise σ",
    "feedback_lr": "DTP feedback learning rate",
}


def _train(args: argparse.Namespace) -> int:
    config = TrainConfig(
        rule=args.rule,
        topology=args.topology,
        data=args.data,
        data_root=str(Path(args.data_root).resolve()) if args.data_root else None,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        momentum=args.momentum,
        grad_clip=args.grad_clip,
        lr_schedule=args.lr_schedule,
        dropout=args.dropout,
        conv_trainable=not args.fixed_conv,
        hidden_activation=args.activation,
        init=args.init,
        seed=args.seed,
        track_alignment=not args.no_alignment,
        activation_noise=args.activation_noise,
        reward=args.reward,
        epsilon=args.epsilon,
        reward_norm=args.reward_norm,
        neuron=args.neuron,
        beta=args.beta,
        threshold=args.threshold,
        time_steps=args.time_steps,
        **{name: getattr(args, name) for name in RULE_OPTIONS},
    )
    result = train(config, out_dir=args.out, resume=args.resume, progress=not args.quiet)
    print(result_table([result]))
    if args.out:
        print(f"log and checkpoint in {args.out}", file=sys.stderr)
    return 0


def chip_table(result: ChipResult) -> str:
    """Per-epoch errors, then each counter per training sample by phase."""
    n = result.samples_per_epoch
    epochs = markdown_table(
        ["epoch", "train error %", "test error %", "samples/s"],
        [
            [str(e.epoch), _fmt_pct(e.train_error), _fmt_pct(e.test_error), f"{n / e.seconds:.0f}"]
            for e in result.history
        ],
    )
    counts = result.core.counters.as_dict()
    samples = n * len(result.history)
    per_sample = markdown_table(
        ["counter (per sample)", *PHASES],
        [[kind, *(f"{counts[p][kind] / samples:.1f}" for p in PHASES)] for kind in KINDS],
    )
    return f"{epochs}\n\n{per_sample}"


def _chip_train(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    config = ChipTrainConfig(
        data=args.data,
        data_root=str(Path(args.data_root).resolve()) if args.data_root else None,
        epochs=args.epochs,
        seed=args.seed,
        init=args.init,
    )
    weights = load_params(args.params, spec)[0] if args.params else None
    kernels = load_kernels(args.params, spec) if args.params and spec.conv else None
    result = train_chip(
        spec,
        config,
        out_dir=args.out,
        resume=args.resume,
        progress=not args.quiet,
        weights=weights,
        kernels=kernels,
    )
    print(chip_table(result))
    if args.out:
        print(f"parameters and log in {args.out}", file=sys.stderr)
    return 0


def _rtl(args: argparse.Namespace) -> int:
    from firmware.package import write_package
    from sim.chip.params import initial_weights

    spec = load_spec(args.spec)
    weights = load_params(args.params, spec)[0] if args.params else initial_weights(spec, "zero")
    package = write_package(spec, weights, args.out)
    print(f"{package.verilog}\n{package.manifest}\n{package.core_file}\n{package.c_dir}")
    for path in package.images:
        print(path)
    return 0


def _fpga(args: argparse.Namespace) -> int:
    from hw_reports.bitstream import build_bitstream

    spec = load_spec(args.spec)
    weights = load_params(args.params, spec)[0] if args.params else None
    result = build_bitstream(
        spec, args.out, args.board, weights, baud=args.baud, progress=not args.quiet
    )
    fpga = result.implementation
    print(
        f"{result.bitstream} ({result.board}): {fpga.luts} LUT4, {fpga.flip_flops} FF, "
        f"{fpga.dsps} DSP, {fpga.brams} BRAM, Fmax {fpga.fmax_mhz} MHz, {result.seconds:.0f} s"
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from plasticore.verify import Mismatch, verify
    from sim.chip.params import initial_kernels, initial_weights, load_kernels
    from sim.chip.train import dataset_codes
    from sim.data import load_dataset

    spec = load_spec(args.spec)
    if args.samples < 1:
        raise PlasticoreError(f"--samples must be at least 1, got {args.samples}")
    weights = load_params(args.params, spec)[0] if args.params else initial_weights(spec)
    kernels = None
    if spec.conv:
        kernels = load_kernels(args.params, spec) if args.params else initial_kernels(spec)
    dataset = load_dataset(args.data, seed=0, root=args.data_root)
    x, _ = dataset_codes(spec, dataset)
    n = min(args.samples, len(x))
    report = verify(
        spec,
        weights,
        x[:n],
        dataset.y_train[:n],
        args.out,
        learn=not args.infer_only,
        sim=args.sim,
        check_every=args.check_every,
        waves=args.waves,
        kernels=kernels,
    )
    rows = [
        ["samples", str(report.samples)],
        ["mismatches", str(len(report.mismatches))],
        ["sim s/sample", f"{report.sim_seconds / report.samples:.3f}"],
    ]
    for phase in ("inference", "learning"):
        rows.append(
            [
                f"{phase} cycles/sample (ideal)",
                f"{report.cycles_per_sample(phase):.0f} "
                f"({report.ideal_cycles_per_sample(phase):.0f})",
            ]
        )
    print(markdown_table(["", spec.name], rows))
    if report.mismatches:
        raise Mismatch(report.mismatches[0])
    return 0


def _quantize(args: argparse.Namespace) -> int:
    """Train the spec's topology in float, convert it to the core, compare both on the test
    split. A LIF core's float model is a spiking network (`--neuron lif`), a hard-tanh
    core's a hard-tanh MLP; both without biases, as the core has none."""
    # Imported here: brevitas (behind quant.qat) adds seconds to every CLI start, and the
    # command stays in one block.
    from dataclasses import asdict

    from quant.atomic import output_dir
    from quant.convert import convert, weight_frac_bits
    from quant.errors import ConfigError
    from quant.qat import core_weights, drop_biases
    from quant.spec import save_spec
    from sim.chip.golden import GoldenCore
    from sim.chip.params import save_params
    from sim.chip.train import PARAMS, dataset_codes, test_error
    from sim.data import load_dataset

    spec = load_spec(args.spec)
    # A LIF core's default float rule is the window twin of its own on-chip rule.
    rule = args.rule or (
        f"{spec.rule}_window"
        if spec.spiking and spec.rule != "none"
        else "surrogate_bp"
        if spec.spiking
        else "drtp"
    )
    if spec.spiking and rule not in SNN_RULES:
        raise ConfigError(
            f"rule {rule!r}: spec {spec.name!r} has LIF neurons, so its float model is a "
            f"spiking network, trained by one of {', '.join(SNN_RULES)}"
        )
    root = str(Path(args.data_root).resolve()) if args.data_root else None
    dataset = load_dataset(args.data, seed=args.seed, root=root)
    x_test = dataset_codes(spec, dataset)[1]
    beta = 1.0 - 2.0**-spec.leak_shift if spec.leak_shift else 1.0
    config = TrainConfig(
        rule=rule,
        topology="_".join(f"FC_{n}" for n in spec.layer_sizes[1:]),
        data=args.data,
        data_root=root,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        hidden_activation="tanh" if spec.spiking else "hardtanh",  # tanh: unused by LIF
        init="he_uniform",  # zero biases: the core has none
        seed=args.seed,
        track_alignment=False,
        neuron="lif" if spec.spiking else "none",
        beta=beta,
        threshold=args.threshold,
        time_steps=spec.time_steps,
    )
    result = train(config, dataset=dataset, prepare=drop_biases, progress=not args.quiet)
    floats = core_weights(result.network)
    if spec.spiking:
        core_spec, weights = convert(spec, floats, threshold=args.threshold, beta=beta)
    else:
        core_spec, weights = convert(spec, floats)
    core = GoldenCore(core_spec, weights)
    float_error, core_error = result.final.test_error, test_error(core, x_test, dataset.y_test)
    frac_bits = [weight_frac_bits(w, spec.weight_bits) for w in floats]
    errors = markdown_table(
        ["model", "test error %"],
        [
            [f"float ({rule}, {args.epochs} epochs)", _fmt_pct(float_error)],
            [f"integer core ({core_spec.weight_bits}-bit weights)", _fmt_pct(core_error)],
        ],
    )
    compares = core_spec.thresholds or core_spec.act_shifts
    layers = markdown_table(
        ["layer", "weight scale", "threshold" if spec.spiking else "act_shift"],
        [
            [str(k + 1), f"2^{-f}", str(v)]
            for k, (f, v) in enumerate(zip(frac_bits, compares, strict=True))
        ],
    )
    print(f"{errors}\n\n{layers}")
    out = output_dir(args.out)
    if out is not None:
        meta = {
            "quantize": {
                "train": asdict(config),
                "frac_bits": frac_bits,
                "float_test_error": float_error,
                "core_test_error": core_error,
            }
        }
        save_spec(core_spec, out / "spec.toml")
        save_params(out / PARAMS, core_spec, weights, core.lfsr_state, meta)
        print(
            f"spec and parameters in {out}; continue learning on chip with: plasticore chip "
            f"train --spec {out / 'spec.toml'} --params {out / PARAMS}",
            file=sys.stderr,
        )
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from plasticore.sweep import load_grid, run_sweep

    grid = load_grid(args.grid)
    try:
        run_sweep(
            grid,
            args.out,
            backend=args.backend,
            workers=args.workers,
            address=args.address,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            "plasticore: interrupted; rerun the same command to continue: finished points "
            f"are kept in {Path(args.out) / 'points'}",
            file=sys.stderr,
        )
        return 130
    print((Path(args.out) / "sweep.md").read_text())
    return 0


def _nir_export(args: argparse.Namespace) -> int:
    from sim.chip.params import initial_weights
    from sim.interop.nir_graph import core_to_nir, write_nir

    spec = load_spec(args.spec)
    weights = load_params(args.params, spec)[0] if args.params else initial_weights(spec, "zero")
    print(write_nir(args.out, core_to_nir(spec, weights)))
    return 0


def _nir_import(args: argparse.Namespace) -> int:
    from quant.atomic import output_dir
    from quant.spec import save_spec
    from sim.chip.params import save_params
    from sim.chip.train import PARAMS
    from sim.interop.nir_graph import core_from_nir, read_nir

    base = load_spec(args.base) if args.base else None
    spec, weights = core_from_nir(
        read_nir(args.graph), base=base, assume_subtract=args.assume_subtract
    )
    out = output_dir(args.out)
    save_spec(spec, out / "spec.toml")
    save_params(out / PARAMS, spec, weights, spec.seed, {"nir": str(args.graph)})
    print(f"{out / 'spec.toml'}\n{out / PARAMS}")
    return 0


def _data_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--data", default=default, help=f"one of {', '.join(DATASET_NAMES)}")
    parser.add_argument(
        "--data-root", default=None, help="directory of user-supplied dataset files"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="plasticore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "run", help="the main job: learn on chip, Verilog, co-simulation, hardware report"
    )
    run.add_argument("--out", default="build/main", help="output directory")
    run.add_argument("--epochs", type=int, default=1, help="on-chip learning epochs")
    run.add_argument("--cosim-samples", type=int, default=4, help="0: no co-simulation")
    run.add_argument("--no-synth", dest="synth", action="store_false", help="no synthesis")
    run.add_argument(
        "--fpga", action="store_true", help="also ECP5 place and route and iCE40 fit (minutes)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_run)

    compare = sub.add_parser("compare-rules", help="every float rule side by side on digits")
    compare.add_argument("--quiet", action="store_true", help="no progress bars")
    compare.set_defaults(func=_compare_rules)

    t = sub.add_parser("train", help="train a network with a learning rule")
    t.add_argument(
        "--rule",
        default="drtp",
        help=f"one of {', '.join(RULES)}; with --neuron lif one of {', '.join(SNN_RULES)}",
    )
    t.add_argument("--topology", default="FC_500_FC_10", help="e.g. CONV_32_5_1_2_FC_1000_FC_10")
    _data_arguments(t, default="mnist5k")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=60)
    t.add_argument("--lr", type=float, default=1.5e-4)
    t.add_argument("--optimizer", default="adam", help=f"one of {', '.join(OPTIMIZERS)}")
    t.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    t.add_argument(
        "--lr-schedule",
        default="constant",
        help=f"one of {', '.join(LR_SCHEDULES)} (onecycle: peaks at --lr, per minibatch)",
    )
    t.add_argument(
        "--grad-clip", type=float, default=0.0, help="adaptive gradient clipping λ (0: off)"
    )
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--fixed-conv", action="store_true", help="keep conv kernels fixed-random")
    t.add_argument("--activation", default="tanh", help="hidden activation")
    t.add_argument(
        "--activation-noise", type=float, default=0.0, help="std of training noise on activations"
    )
    t.add_argument(
        "--init", default=None, help="he_uniform, torch_default or zeros (default: the rule's)"
    )
    t.add_argument("--reward", default="softmax_ce", help="LFP initial reward")
    t.add_argument("--epsilon", type=float, default=1e-6, help="LFP stabiliser ε")
    t.add_argument(
        "--reward-norm", action="store_true", help="LFP: rescale each layer's reward to max 1"
    )
    for name, text in RULE_OPTIONS.items():
        default = TrainConfig.__dataclass_fields__[name].default
        t.add_argument(
            f"--{name.replace('_', '-')}", type=type(default), default=default, help=text
        )
    t.add_argument("--neuron", default="none", help="none, or lif: a spiking network")
    t.add_argument("--beta", type=float, default=0.9, help="LIF membrane decay β")
    t.add_argument("--threshold", type=float, default=1.0, help="LIF firing threshold θ")
    t.add_argument("--time-steps", type=int, default=15, help="LIF window T (constant input)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-alignment", action="store_true", help="skip the angle to BP")
    t.add_argument("--out", default=None, help="directory for log.json and checkpoint.pt")
    t.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=_train)

    chip = sub.add_parser("chip", help="the learning core's golden model")
    chip_sub = chip.add_subparsers(dest="chip_command", required=True, parser_class=_Parser)
    c = chip_sub.add_parser("train", help="learn on chip, sample by sample, in the golden model")
    c.add_argument("--spec", required=True, help="a CoreSpec TOML file, e.g. configs/digits.toml")
    _data_arguments(c, default="digits")
    c.add_argument("--epochs", type=int, default=3)
    c.add_argument("--seed", type=int, default=0, help="initial weights and sample order")
    c.add_argument("--init", default="random", help=f"initial weights: {', '.join(INITS)}")
    c.add_argument("--params", default=None, help="start from this parameter file (.npz)")
    c.add_argument("--out", default=None, help="directory for params.npz and log.json")
    c.add_argument("--resume", action="store_true", help="continue from --out's params.npz")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=_chip_train)

    nir = sub.add_parser("nir", help="a core to and from a NIR graph (docs/interop.md)")
    nir_sub = nir.add_subparsers(dest="nir_command", required=True, parser_class=_Parser)
    ne = nir_sub.add_parser("export", help="write a core's NIR graph (spec and integers inside)")
    ne.add_argument("--spec", required=True, help="a CoreSpec TOML file")
    ne.add_argument("--params", default=None, help="integer weights (.npz); default zero")
    ne.add_argument("--out", required=True, help="the .nir file to write")
    ne.set_defaults(func=_nir_export)
    ni = nir_sub.add_parser("import", help="a NIR graph to spec.toml and params.npz")
    ni.add_argument("--graph", required=True, help="a .nir file")
    ni.add_argument(
        "--base", default=None, help="spec for what a foreign graph lacks (widths, rule)"
    )
    ni.add_argument(
        "--assume-subtract",
        action="store_true",
        help="read foreign LIF nodes as reset by subtraction with a one-step delay",
    )
    ni.add_argument("--out", required=True, help="directory for spec.toml and params.npz")
    ni.set_defaults(func=_nir_import)

    q = sub.add_parser("quantize", help="train in float, convert to a core's integers")
    q.add_argument("--spec", required=True, help="the core to convert to, e.g. configs/digits.toml")
    _data_arguments(q, default="digits")
    q.add_argument(
        "--rule",
        default=None,
        help=f"float rule: LIF cores one of {', '.join(SNN_RULES)} (default: the window "
        "twin of the spec's rule, drtp_window or lfp_window; surrogate_bp for rule none), "
        f"hard-tanh cores one of {', '.join(RULES)} (default drtp)",
    )
    q.add_argument("--epochs", type=int, default=10)
    q.add_argument("--batch-size", type=int, default=20)
    q.add_argument("--lr", type=float, default=3e-3)
    q.add_argument("--threshold", type=float, default=1.0, help="LIF: the float threshold θ")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", default=None, help="directory for spec.toml and params.npz")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=_quantize)

    r = sub.add_parser(
        "rtl",
        help="write the core's Verilog, memory images, manifest, C driver and FuseSoC core",
    )
    r.add_argument("--spec", required=True, help="TOML core spec, e.g. configs/digits.toml")
    r.add_argument(
        "--params", default=None, help="params.npz for the weight images (default: zeros)"
    )
    r.add_argument("--out", default="build", help="output directory")
    r.set_defaults(func=_rtl)

    f = sub.add_parser("fpga", help="build a bitstream: the core behind a UART bridge on a board")
    f.add_argument("--spec", required=True, help="TOML core spec, e.g. configs/digits.toml")
    f.add_argument("--board", default=DEFAULT_BOARD, help=f"one of {', '.join(BOARDS)}")
    f.add_argument("--params", default=None, help="params.npz to preload the weights")
    f.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="UART bridge baud rate")
    f.add_argument("--out", default="build/fpga", help="output directory")
    f.add_argument("--quiet", action="store_true", help="no progress messages")
    f.set_defaults(func=_fpga)

    v = sub.add_parser("verify", help="co-simulate the RTL core against the golden model")
    v.add_argument("--spec", required=True, help="TOML core spec, e.g. configs/digits.toml")
    _data_arguments(v, default="digits")
    v.add_argument("--samples", type=int, default=20)
    v.add_argument("--params", default=None, help="params.npz to start from (else random)")
    v.add_argument("--sim", default="verilator", help="verilator or icarus")
    v.add_argument("--check-every", type=int, default=10, help="compare all weights every N")
    v.add_argument("--infer-only", action="store_true", help="no learning steps")
    v.add_argument("--waves", action="store_true", help="dump waveforms")
    v.add_argument("--out", default="build/verify", help="build directory")
    v.set_defaults(func=_verify)

    h = sub.add_parser("report", help="area, Fmax, memory accesses and energy of a core")
    h.add_argument("--spec", required=True, help="TOML core spec, e.g. configs/digits.toml")
    _data_arguments(h, default="digits")
    h.add_argument("--params", default=None, help="params.npz to start from (else random)")
    h.add_argument("--samples", type=int, default=200, help="samples priced for energy")
    h.add_argument("--cosim-samples", type=int, default=4, help="0: no co-simulation")
    h.add_argument("--sim", default="verilator", help="verilator or icarus")
    h.add_argument("--table", default=None, help="energy table TOML (default: 45 nm)")
    h.add_argument("--no-synth", action="store_true", help="no synthesis (no area)")
    h.add_argument("--no-fpga", action="store_true", help="no FPGA place and route")
    h.add_argument(
        "--pnr-seeds",
        type=int,
        nargs="*",
        default=[],
        metavar="SEED",
        help="place and route the learning core again with these nextpnr seeds (Fmax spread)",
    )
    h.add_argument("--out", default=None, help="default hw_reports/<spec name>")
    h.add_argument("--quiet", action="store_true", help="no progress lines")
    h.set_defaults(func=_report)

    s = sub.add_parser(
        "sweep", help="learn on chip over a grid of cores: accuracy, energy, area, Pareto front"
    )
    s.add_argument("--grid", required=True, help="grid TOML file, e.g. sweeps/small.toml")
    s.add_argument("--out", required=True, help="output directory (rerun it to resume)")
    s.add_argument("--backend", default="local", help="local (process pool) or ray")
    s.add_argument(
        "--address", default=None, help="ray: cluster address (default: start a local instance)"
    )
    s.add_argument(
        "--workers", type=int, default=None, help="processes or local Ray CPUs (default: all)"
    )
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.set_defaults(func=_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "resume", False) and not args.out:
        parser.error("--resume needs --out (the directory holding the checkpoint)")
    try:
        return args.func(args)
    except PlasticoreError as error:
        print(f"plasticore: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "plasticore: interrupted; rerun with --resume to continue from the last "
            "completed epoch",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
