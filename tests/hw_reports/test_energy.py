"""Energy accounting: parts sum to the whole, linear in samples, zero learning energy
without learning, user tables change the price as written, bad tables refused."""

import tomllib
from dataclasses import replace

import numpy as np
import pytest

from hw_reports.energy import (
    DEFAULT_TABLE,
    UNIT_OF_KIND,
    TableError,
    check_counters,
    energy,
    load_table,
    parse_table,
    prices,
)
from quant.counters import PHASES
from quant.spec import load_spec
from rtl.core import memories
from sim.chip.golden import GoldenCore
from sim.chip.params import initial_weights

SPEC = replace(load_spec("configs/digits.toml"), inputs=16, hidden=(12,), thresholds=(150, 40))


def run(spec, samples: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    core = GoldenCore(spec, initial_weights(spec, seed=1))
    for _ in range(samples):
        x = rng.integers(0, 1 << spec.input_bits, spec.inputs)
        if spec.rule == "none":
            core.infer(x)
        else:
            core.learn(x, int(rng.integers(spec.classes)))
    return core.counters.as_dict()


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_parts_sum_to_total(table) -> None:
    report = energy(SPEC, run(SPEC, 6), 6, table, memories(SPEC))
    by_unit = sum(sum(report.by_unit(p).values()) for p in PHASES)
    by_kind = sum(sum(report.per_kind[p].values()) for p in PHASES)
    assert report.total == pytest.approx(by_unit) == pytest.approx(by_kind)
    assert report.phase("learning") > 0 and report.phase("inference") > 0


def test_twice_the_samples_twice_the_energy(table) -> None:
    mems = memories(SPEC)
    once = energy(SPEC, run(SPEC, 5), 1, table, mems)  # total over the run
    doubled = {p: {k: 2 * v for k, v in c.items()} for p, c in run(SPEC, 5).items()}
    assert energy(SPEC, doubled, 1, table, mems).total == pytest.approx(2 * once.total)
    assert energy(SPEC, doubled, 2, table, mems).total == pytest.approx(once.total)


def test_inference_only_core_has_no_learning_energy(table) -> None:
    spec = SPEC.inference_only()
    report = energy(spec, run(spec, 4), 4, table, memories(spec))
    assert report.phase("learning") == 0.0
    assert report.phase("inference") > 0.0


def test_user_table_changes_the_price_as_written(table, tmp_path) -> None:
    data = tomllib.loads(DEFAULT_TABLE.read_text())
    data["add"] = {key: 10 * value for key, value in data["add"].items()}
    text = "\n".join(
        f"[{section}]\n" + "\n".join(f"{k!s} = {v!r}".replace("'", '"') for k, v in body.items())
        for section, body in data.items()
    )
    (tmp_path / "t.toml").write_text(text)
    scaled = load_table(tmp_path / "t.toml")
    counters, mems = run(SPEC, 4), memories(SPEC)
    base, tenfold = energy(SPEC, counters, 4, table, mems), energy(SPEC, counters, 4, scaled, mems)
    for phase in PHASES:
        for kind in UNIT_OF_KIND:
            ratio = 10 if kind in ("adds", "compares", "lfsr_draws") else 1  # priced as adds
            assert tenfold.per_kind[phase][kind] == pytest.approx(
                ratio * base.per_kind[phase][kind]
            ), (phase, kind)


def test_sram_energy_grows_with_size_and_word(table) -> None:
    assert table.sram_access(8192, 64) == pytest.approx(10.0)
    assert table.sram_access(32768, 64) == pytest.approx(20.0)
    assert table.sram_access(16384, 64) == pytest.approx(10.0 * 2**0.5)
    assert table.sram_access(8192, 32) == pytest.approx(5.0)
    assert table.sram_access(2048, 64) == pytest.approx(5.0)  # extrapolated, slope 1/2
    assert table.op("mult", 8) == 0.2 and table.op("mult", 9) == 0.79
    assert table.op("add", 64) == pytest.approx(0.2)


def test_banked_weights_are_priced_as_one_array(table) -> None:
    """Banks are for FPGA timing: a read is priced at the size of the layer's whole weight
    memory, the MNIST core's five banks (79.6 KiB) as one array, not one 16 KiB bank."""
    spec = load_spec("configs/mnist.toml")
    mems = memories(spec)
    banks = [m for m in mems if m.array == "weights0"]
    assert [m.name for m in banks] == [f"weights0_{b}" for b in range(5)]
    price = prices(spec, table, mems)["inference"]["weight_reads"]
    whole = sum(m.bits for m in banks) / 8
    assert price.pj == pytest.approx(table.sram_access(whole, 64))
    assert price.pj > 2 * table.sram_access(banks[0].bits / 8, 64)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("mult"), "missing section [mult]"),
        (lambda d: d["add"].update({"8": -0.1}), "must be positive"),
        (lambda d: d["table"].update({"energy_unit": "kWh"}), "energy_unit must be one of"),
        (lambda d: d["area"].pop("sram_bit"), "needs 'sram_bit'"),
        (lambda d: d.update({"leakage": {}}), "unknown section"),
        (lambda d: d["add"].update({"wide": 1.0}), "keys are sizes"),
        (lambda d: d["sram"].update({"8192": "ten"}), "must be a number"),
    ],
)
def test_bad_tables_are_refused(edit, message: str) -> None:
    data = tomllib.loads(DEFAULT_TABLE.read_text())
    edit(data)
    with pytest.raises(TableError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_table(data, "bad.toml")


def test_counter_disagreement_is_named() -> None:
    golden = run(SPEC, 2)
    rtl = {p: dict(c) for p, c in golden.items()}
    rtl["learning"]["weight_writes"] += 1
    rtl["inference"]["cycles"] += 99  # measured, not compared
    assert check_counters(golden, golden) == []
    assert check_counters(golden, rtl) == [
        "learning.weight_writes: golden "
        f"{golden['learning']['weight_writes']}, RTL {golden['learning']['weight_writes'] + 1}"
    ]
