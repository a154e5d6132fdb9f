"""The hardware report without synthesis: energy and memory sections agree with their
sources, stages resume, plots are reproducible, a core without learning is refused."""

import json

import pytest

from hw_reports.energy import energy, load_table
from hw_reports.report import ReportConfig, build_report, golden_counters
from plasticore.cli import main
from quant.errors import PlasticoreError
from quant.spec import load_spec
from rtl.core import memories
from sim.chip.params import initial_kernels, initial_weights
from sim.chip.train import dataset_codes
from sim.data import load_dataset

SPEC = load_spec("configs/digits.toml")
CONFIG = ReportConfig(samples=12, cosim_samples=0, synth=False, fpga=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, build_report(SPEC, out, CONFIG, progress=False)


def test_energy_matches_the_priced_golden_counters(report) -> None:
    _, result = report
    dataset = load_dataset("digits", seed=0)
    x, _ = dataset_codes(SPEC, dataset)
    run = golden_counters(SPEC, initial_weights(SPEC), x[:12], dataset.y_train[:12])
    assert run["counters"] == result["counters"]["learning"] and run["kernel_reads"] == 0
    expected = energy(SPEC, run["counters"], 12, load_table(), memories(SPEC))
    got = result["energy"]["learning"]["per_sample_pj"]
    assert got["learning"] == pytest.approx(expected.phase("learning"))
    assert result["learning_energy_overhead_pct"] == pytest.approx(
        100 * expected.phase("learning") / expected.phase("inference")
    )
    twin = result["energy"]["inference_only"]["per_sample_pj"]
    assert twin["learning"] == 0.0 and twin["inference"] > 0.0


def test_memory_section_counts_learning_state(report) -> None:
    _, result = report
    mem = result["memory"]["learning"]
    learning = {m["name"]: m["bits"] for m in mem["memories"] if m["learning"]}
    # LFSR projection: no ROM, only the post factors (a word of 8 six-bit factors) and the
    # hidden layer's fired-lane mask (8 bits), a word each per block of the 100 neurons.
    blocks = -(-100 // 8)
    assert learning == {"factors": blocks * 8 * 6, "fired0": blocks * 8}, learning
    assert mem["learning_bits"] == sum(learning.values())
    assert mem["learning_share_of_weights"] == mem["learning_bits"] / mem["weight_bits"]
    assert result["memory"]["inference_only"]["learning_bits"] == 0


def test_report_files_and_resume(report) -> None:
    out, _ = report
    text = (out / "report.md").read_text()
    assert "## Energy per sample (pJ)" in text and "SPOON" in text
    assert json.loads((out / "report.json").read_text())["samples"] == 12
    first = (out / "memory_accesses.svg").read_bytes()
    stage = next((out / "stages").glob("counters-learning-*.json"))
    kept = json.loads(stage.read_text())
    kept["value"]["counters"]["learning"]["adds"] += 1000  # read back, not recomputed
    stage.write_text(json.dumps(kept))
    again = build_report(SPEC, out, CONFIG, progress=False)
    adds = kept["value"]["counters"]["learning"]["adds"]
    assert again["counters"]["learning"]["learning"]["adds"] == adds
    assert (out / "memory_accesses.svg").read_bytes() == first  # same accesses, same bytes
    assert b"<svg" in first and b"<dc:date>" not in first


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"samples": 0}, "samples must be at least 1"),
        ({"cosim_samples": -1}, "cosim_samples must be >= 0"),
        ({"pnr_seeds": (2, 2)}, "pnr_seeds must be distinct positive integers"),
        ({"pnr_seeds": (0,)}, "pnr_seeds must be distinct positive integers"),
    ],
)
def test_bad_report_config_is_refused(field, message) -> None:
    with pytest.raises(PlasticoreError, match=message):
        ReportConfig(**field)


def test_inference_only_spec_is_refused(tmp_path) -> None:
    with pytest.raises(PlasticoreError, match="rule 'none'"):
        build_report(SPEC.inference_only(), tmp_path, CONFIG, progress=False)


def test_cli_report_writes_to_out(tmp_path, capsys) -> None:
    code = main(
        ["report", "--spec", "configs/digits.toml", "--samples", "5", "--cosim-samples", "0",
         "--no-synth", "--no-fpga", "--out", str(tmp_path), "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert "Learning-state memory" in capsys.readouterr().out
    assert (tmp_path / "report.json").exists()


def test_front_end_kernel_reads_are_priced_apart(tmp_path) -> None:
    """`digits_conv`: the front end's kernel word reads leave the weight reads and are
    priced at the kernel memory; the contract's weight reads are still their sum, and the
    energy is the counters priced one by one."""
    spec = load_spec("configs/digits_conv.toml")
    result = build_report(spec, tmp_path, CONFIG, progress=False)
    dataset = load_dataset("digits", seed=0)
    x, _ = dataset_codes(spec, dataset)
    kernels = initial_kernels(spec)
    run = golden_counters(spec, initial_weights(spec), x[:12], dataset.y_train[:12], kernels)
    counted = run["counters"]["inference"]["weight_reads"]
    assert 0 < run["kernel_reads"] < counted
    priced = result["energy"]["learning"]
    prices = {k: v["pj"] for k, v in priced["prices"]["inference"].items()}
    assert "kernels" in priced["prices"]["inference"]["kernel_reads"]["as"]
    # Most state accesses are the conv neurons': priced at the larger conv state memory.
    assert "conv_state" in priced["prices"]["inference"]["state_reads"]["as"]
    assert prices["kernel_reads"] < prices["weight_reads"]  # 36 B of kernels, 4.5 KiB of weights
    inference = priced["per_kind_pj"]["inference"]
    assert inference["kernel_reads"] == pytest.approx(
        run["kernel_reads"] * prices["kernel_reads"] / 12
    )
    fc_reads = counted - run["kernel_reads"]
    assert inference["weight_reads"] == pytest.approx(fc_reads * prices["weight_reads"] / 12)
    assert priced["per_unit_pj"]["inference"]["kernel memory"] == inference["kernel_reads"]
