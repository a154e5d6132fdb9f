import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from plasticore.cli import main
from quant.spec import load_spec, save_spec
from sim.chip.params import initial_weights, load_params, save_params


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--rule", "hebb"], "unknown rule 'hebb'"),
        (["--topology", "FC_500_XX_10"], "token 3 is 'XX'"),
        (["--lr", "0"], "lr must be a finite number > 0"),
        (["--lr", "-0.1"], "lr must be a finite number > 0"),
        (["--data", "nosuchdata"], "unknown dataset"),
        (["--epochs", "two"], "invalid int value"),
        (["--resume"], "--resume needs --out"),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_exit(args, phrase, capsys):
    try:
        code = main(["train", "--data", "digits", "--topology", "FC_10_FC_10", *args])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert phrase in _error_line(capsys)


def test_missing_dataset_file_names_it(tmp_path, capsys):
    code = main(["train", "--data", "mnist", "--data-root", str(tmp_path)])
    assert code == 2
    line = _error_line(capsys)
    assert str(tmp_path) in line and "train-images-idx3-ubyte" in line


def test_train_writes_log_and_resumes(tmp_path, capsys):
    base = [
        "train",
        "--rule",
        "drtp",
        "--topology",
        "FC_20_FC_10",
        "--data",
        "digits",
        "--batch-size",
        "50",
        "--lr",
        "1e-3",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    assert main([*base, "--epochs", "2"]) == 0
    table = capsys.readouterr().out
    assert "| drtp" in table and "angle L1" in table
    assert main([*base, "--epochs", "3", "--resume"]) == 0
    log = json.loads((tmp_path / "log.json").read_text())
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3]


def test_console_entry_point_reports_errors_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "plasticore", "train", "--rule", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "plasticore: error: rule: unknown rule 'nope'; choose one of bp, fa, dfa, sdfa, drtp, "
        "shallow, lfp, dp, dpt, frfb, urfb, dtp, fwdtp"
    )


def test_quantize_writes_a_core_that_learns_on_chip(tmp_path, capsys):
    out = tmp_path / "q"
    args = ["quantize", "--spec", "configs/digits.toml", "--epochs", "2", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "| float (drtp_window, 2 epochs)" in printed.out and "| threshold" in printed.out
    assert "plasticore chip train --spec" in printed.err
    spec = load_spec(out / "spec.toml")
    weights, _, meta = load_params(out / "params.npz", spec)
    assert spec.thresholds != load_spec("configs/digits.toml").thresholds
    assert max(int(abs(w).max()) for w in weights) > 63  # the scale fills the 8 bits
    assert meta["quantize"]["core_test_error"] < 0.5
    chip = ["chip", "train", "--spec", str(out / "spec.toml"), "--params", str(out / "params.npz")]
    assert main([*chip, "--epochs", "1", "--quiet"]) == 0


def test_quantize_a_hardtanh_core_with_drtp(tmp_path, capsys):
    base = replace(
        load_spec("configs/digits.toml"),
        hidden=(32,),
        neuron="hardtanh",
        time_steps=1,
        thresholds=(),
        act_shifts=(0, 0),
    )
    save_spec(base, tmp_path / "tanh.toml")
    assert (
        main(["quantize", "--spec", str(tmp_path / "tanh.toml"), "--epochs", "2", "--quiet"]) == 0
    )
    table = capsys.readouterr().out
    assert "| float (drtp, 2 epochs)" in table and "| act_shift" in table


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--rule", "drtp"], "rule 'drtp': spec 'digits' has LIF neurons"),
        (["--data", "drtp_classification"], "spec 'digits' has 64 inputs"),
        (["--epochs", "0"], "epochs must be >= 1"),
    ],
)
def test_quantize_refusals_give_one_line(args, phrase, capsys):
    assert main(["quantize", "--spec", "configs/digits.toml", "--quiet", *args]) == 2
    assert phrase in _error_line(capsys)


def test_rtl_writes_verilog_and_manifest(tmp_path) -> None:
    from quant.spec import CoreSpec
    from rtl.memory_map import spec_hash

    spec = CoreSpec(
        name="tiny",
        inputs=3,
        hidden=(2,),
        classes=2,
        thresholds=(4, 4),
        lr_shifts=(1, 1),
        lanes=2,
        acc_bits=20,
    )
    save_spec(spec, tmp_path / "tiny.toml")
    assert main(["rtl", "--spec", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "b")]) == 0
    source = (tmp_path / "b" / "plasticore_core.v").read_text()
    assert "module plasticore_core" in source and "bus__adr" in source
    info = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert info["spec_hash"] == f"0x{spec_hash(spec):08x}"
    assert [r["name"] for r in info["regions"]] == [
        "csr",
        "inputs",
        "outputs",
        "weights0",
        "weights1",
    ]


def test_fpga_refuses_an_unknown_board(capsys) -> None:
    assert main(["fpga", "--spec", "configs/digits.toml", "--board", "nexys"]) == 2
    assert "board must be one of ulx3s-12f" in _error_line(capsys)


def test_nir_export_then_import_gives_the_core_back(tmp_path, capsys) -> None:
    spec = load_spec("configs/digits.toml")
    weights = initial_weights(spec, "random", 4)
    save_params(tmp_path / "p.npz", spec, weights, spec.seed)
    graph = tmp_path / "digits.nir"
    args = ["nir", "export", "--spec", "configs/digits.toml", "--params", str(tmp_path / "p.npz")]
    assert main([*args, "--out", str(graph)]) == 0
    assert main(["nir", "import", "--graph", str(graph), "--out", str(tmp_path / "back")]) == 0
    back = load_spec(tmp_path / "back" / "spec.toml")
    assert back == spec
    loaded = load_params(tmp_path / "back" / "params.npz", back)[0]
    assert all(np.array_equal(a, b) for a, b in zip(weights, loaded, strict=True))
    assert (
        main(["nir", "import", "--graph", str(tmp_path / "none.nir"), "--out", str(tmp_path)]) == 2
    )
    assert "none.nir" in _error_line(capsys)


def test_report_prices_a_conv_front_end(tmp_path, capsys) -> None:
    """The report of a core with the front end: its kernel reads priced apart."""
    args = ["report", "--spec", "configs/digits_conv.toml", "--samples", "3"]
    args += ["--cosim-samples", "0", "--no-synth", "--no-fpga", "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    assert "kernel memory" in capsys.readouterr().out
    result = json.loads((tmp_path / "report.json").read_text())
    assert result["energy"]["learning"]["per_kind_pj"]["inference"]["kernel_reads"] > 0


def test_rtl_packages_a_core_with_front_end(tmp_path) -> None:
    assert main(["rtl", "--spec", "configs/digits_conv.toml", "--out", str(tmp_path)]) == 0
    regions = json.loads((tmp_path / "manifest.json").read_text())["regions"]
    assert {"name": "kernels", "access": "w"}.items() <= regions[-1].items()
    assert "front_end" in (tmp_path / "plasticore_core.v").read_text()
