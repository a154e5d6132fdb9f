import json
import math
import shutil
import time
from pathlib import Path

import pytest

import plasticore.sweep as sweep
from plasticore.cli import main
from plasticore.sweep import configurations, grid_from_toml, load_grid, pareto_front, run_sweep
from quant.errors import ConfigError

ROOT = Path(__file__).parents[2]
BASE = ROOT / "configs" / "digits.toml"
OUTPUTS = ("sweep.json", "points.csv", "configurations.csv", "sweep.md")

# The shipped smoke grid's 4 points, each cut to 40 training and 30 test samples.
TINY = f"""
base = "{BASE}"

[train]
epochs = 1
seeds = [0]
train_samples = 40
test_samples = 30

[axes]
rule = ["drtp", "lfp"]
weight_bits = [4, 8]

[[override]]
where = {{ rule = "lfp" }}
set = {{ lr_shifts = [8, 8] }}
"""


def _grid(tmp_path: Path, text: str = TINY, name: str = "tiny.toml"):
    path = tmp_path / name
    path.write_text(text)
    return load_grid(path)


def _outputs(out: Path) -> dict[str, str]:
    return {name: (out / name).read_text() for name in OUTPUTS}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The tiny grid on the local backend with two worker processes."""
    tmp = tmp_path_factory.mktemp("local")
    grid = _grid(tmp)
    result = run_sweep(grid, tmp / "out", backend="local", workers=2, progress=False)
    return grid, result, tmp / "out"


def test_shipped_grids_load_with_the_promised_sizes():
    small, digits = (
        load_grid(ROOT / "sweeps" / "small.toml"),
        load_grid(ROOT / "sweeps" / "digits.toml"),
    )
    assert len(small.points()) == 4
    assert len(digits.points()) == 2 * 3 * 3 * 3
    assert {p.spec.weight_bits for p in digits.points()} == {4, 6, 8}


def test_points_come_in_a_fixed_order_with_stable_distinct_ids(tmp_path):
    points = _grid(tmp_path).points()
    assert [p.describe() for p in points] == [
        "rule=drtp, weight_bits=4, seed=0",
        "rule=drtp, weight_bits=8, seed=0",
        "rule=lfp, weight_bits=4, seed=0",
        "rule=lfp, weight_bits=8, seed=0",
    ]
    again = _grid(tmp_path, TINY.replace('rule = ["drtp", "lfp"]', 'rule = ["lfp", "drtp"]'))
    assert sorted(p.id for p in again.points()) == sorted(p.id for p in points)
    assert len({p.id for p in points}) == 4
    # the lfp override and the width reach the spec; thresholds scale with the width
    assert points[2].spec.lr_shifts == (12, 12) and points[3].spec.lr_shifts == (8, 8)
    assert points[0].spec.thresholds == (38, 6)
    more = _grid(tmp_path, TINY.replace("train_samples = 40", "train_samples = 41"))
    assert not {p.id for p in more.points()} & {p.id for p in points}


def test_sweep_writes_a_table_per_point_and_the_plot(local_run):
    grid, result, out = local_run
    assert len(result.points) == 4 and result.kept == ()
    assert sorted(result.ran) == sorted(p.id for p in grid.points())
    table = json.loads((out / "sweep.json").read_text())
    assert [r["id"] for r in table["points"]] == [p.id for p in grid.points()]
    for row in table["points"]:
        assert 0 <= row["accuracy_pct"] <= 100
        assert math.isclose(row["energy_pj"], row["inference_pj"] + row["learning_pj"])
        assert math.isclose(
            row["learning_overhead_pct"], 100 * row["learning_pj"] / row["inference_pj"]
        )
        assert row["luts"] > 0 and row["memory_area_mm2"] > 0
    rows = {(r["rule"], r["weight_bits"]): r for r in table["points"]}
    assert rows["drtp", 4]["memory_bits"] < rows["drtp", 8]["memory_bits"]
    assert rows["lfp", 8]["dsps"] > rows["drtp", 8]["dsps"] == 0  # only LFP's products
    assert (out / "points.csv").read_text().count("\n") == 5
    assert "<svg" in (out / "pareto.svg").read_text()
    record = json.loads((out / "points" / f"{result.points[0]['id']}.json").read_text())
    assert record["params"] == grid.points()[0].params()
    assert record["result"]["train_samples"] == 40 and record["result"]["test_samples"] == 30


def test_ray_backend_gives_the_same_table(local_run, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed")
    grid, _, local_out = local_run
    began = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False)
    print(f"ray started in {time.perf_counter() - began:.1f} s")
    try:
        result = run_sweep(grid, tmp_path / "ray", backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert sorted(result.ran) == sorted(p.id for p in grid.points())
    assert _outputs(tmp_path / "ray") == _outputs(local_out)


def test_rerun_runs_only_the_missing_point(local_run, tmp_path, monkeypatch, capsys):
    grid, first, local_out = local_run
    out = tmp_path / "out"
    shutil.copytree(local_out, out)
    before = _outputs(out)
    missing = first.points[2]["id"]
    (out / "points" / f"{missing}.json").unlink()
    calls = []
    real = sweep.run_point
    monkeypatch.setattr(sweep, "run_point", lambda point: calls.append(point.id) or real(point))
    again = run_sweep(grid, out, workers=1)
    assert calls == [missing] and again.ran == (missing,)
    assert set(again.kept) == {r["id"] for r in first.points} - {missing}
    err = capsys.readouterr().err
    assert "3 point(s) kept" in err and err.count("sweep [1/1] rule=lfp, weight_bits=4") == 1
    assert _outputs(out) == before


def test_a_point_file_for_other_parameters_is_rerun(local_run, tmp_path):
    grid, first, local_out = local_run
    out = tmp_path / "out"
    shutil.copytree(local_out, out)
    stale = out / "points" / f"{first.points[0]['id']}.json"
    record = json.loads(stale.read_text())
    record["params"]["seed"] = 7
    stale.write_text(json.dumps(record))
    (out / "points" / f"{first.points[1]['id']}.json").write_text("{ half a fi")
    again = run_sweep(grid, out, workers=1, progress=False)
    assert again.ran == (first.points[0]["id"], first.points[1]["id"])
    assert json.loads(stale.read_text())["params"]["seed"] == 0


def test_a_point_that_cannot_run_stops_the_sweep_naming_why(tmp_path):
    grid = _grid(tmp_path, _replace("epochs = 1", 'data = "mnist5k"'))
    with pytest.raises(ConfigError, match="spec 'digits' has 64 inputs; data 'mnist5k' has 784"):
        run_sweep(grid, tmp_path / "out", workers=1, progress=False)
    assert not list((tmp_path / "out" / "points").glob("*.json"))


def test_cli_prints_the_table_and_refuses_a_bad_grid(local_run, tmp_path, capsys):
    _, _, local_out = local_run
    out = tmp_path / "out"
    shutil.copytree(local_out, out)
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["sweep", "--grid", str(tmp_path / "tiny.toml"), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "## Configurations" in printed.out and "4 point(s) kept" in printed.err
    (tmp_path / "bad.toml").write_text(TINY.replace("weight_bits = [4, 8]", "weight_bit = [4]"))
    assert main(["sweep", "--grid", str(tmp_path / "bad.toml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.toml" in err[0] and "axes.weight_bit" in err[0]
    args = ["sweep", "--grid", str(tmp_path / "tiny.toml"), "--out", str(out)]
    assert main([*args, "--address", "auto"]) == 2
    assert "ray backend only" in capsys.readouterr().err
    assert main([*args, "--backend", "dask"]) == 2
    assert "backend must be one of local, ray, got 'dask'" in capsys.readouterr().err


NO_RULE = """
[[override]]
where = { rule = "none" }
set = { lr_shifts = [] }
"""


def _replace(old: str, new: str) -> str:
    assert old in TINY
    return TINY.replace(old, new)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("colour = 1\n" + TINY, "unknown key(s) colour"),
        (_replace("epochs = 1", "epoch = 1"), "unknown key(s) train.epoch"),
        (_replace("epochs = 1", "epochs = 0"), "train.epochs must be an integer >= 1, got 0"),
        (_replace("seeds = [0]", "seeds = []"), "train.seeds must be a non-empty list"),
        (_replace("seeds = [0]", "seeds = [1, 1]"), "train.seeds holds a value twice"),
        (_replace("seeds = [0]", "seeds = [-1]"), "train.seed must be in [0, 2^32)"),
        (_replace("epochs = 1", 'data = "imagenet"'), "train.data must be one of"),
        (_replace("train_samples = 40", "train_samples = 0"), "train.train_samples must be"),
        (_replace("epochs = 1", 'init = "ones"'), "train.init must be one of random, zero"),
        (_replace("weight_bits = [4, 8]", "rules = [4]"), "axes.rules: unknown key"),
        (_replace("weight_bits = [4, 8]", "weight_bits = []"), "axes.weight_bits must be a non"),
        (_replace("weight_bits = [4, 8]", "weight_bits = [4, 4]"), "axes.weight_bits holds '4'"),
        (_replace("weight_bits = [4, 8]", 'name = ["x"]'), "axes.name: not an axis"),
        (_replace("weight_bits = [4, 8]", "weight_bits = [1]"), "weight_bits must be an integer"),
        (_replace("weight_bits = [4, 8]", 'weight_bits = ["8"]'), "must be an integer in [2, 16]"),
        (_replace("where = {", "where = 3 #"), "override[0].where must be a table, got 3"),
        (_replace("weight_bits = [4, 8]", "lanes = [0]"), "lanes must be an integer in [1, 64]"),
        (_replace('"drtp", "lfp"', '"drtp", "lfp", "none"'), "rule=none, weight_bits=4: lr_"),
        (
            _replace('"drtp", "lfp"', '"drtp", "lfp", "none"') + NO_RULE,
            "rule=none, weight_bits=4: rule 'none' has nothing to learn",
        ),
        (
            _replace("weight_bits = [4, 8]", "hidden = [[100, 50]]"),
            "thresholds must hold one value per weight layer (3), got 2",
        ),
        (_replace("where = { rule", "where = { lanes"), "override[0].where.lanes: not an axis"),
        (_replace('rule = "lfp" }', 'rule = "lpf" }'), "override[0].where.rule: 'lpf' is not"),
        (_replace("set = { lr_shifts", "set = { lr_shift"), "override[0].set.lr_shift: unknown"),
        (_replace("set = { lr_shifts = [8, 8]", 'set = { rule = "drtp"'), "override[0].set.rule"),
        (_replace("set = { lr_shifts = [8, 8] }", "set = {}"), "override[0].set must name"),
        (_replace("set = { lr", "sets = { lr"), "unknown key(s) override[0].sets"),
        (_replace("lr_shifts = [8, 8]", "lr_shifts = [8]"), "rule=lfp, weight_bits=4: lr_shifts"),
        (TINY.replace(f'base = "{BASE}"', 'base = "nowhere.toml"'), "nowhere.toml: cannot read"),
        (TINY.replace(f'base = "{BASE}"', ""), "base must name a CoreSpec TOML file"),
        (TINY.replace("[axes]", "[axes]\n[x"), "not valid TOML"),
    ],
)
def test_bad_grid_is_refused_naming_the_key(tmp_path, text, phrase):
    with pytest.raises(ConfigError) as error:
        _grid(tmp_path, text, "bad.toml")
    assert phrase in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "bad.toml"))


def test_missing_axes_are_refused():
    with pytest.raises(ConfigError, match="axes must name at least one axis"):
        grid_from_toml(f'base = "{BASE}"\n', "g.toml")


def test_pareto_front_of_a_staircase_with_dominated_points():
    # (k, k): more energy buys more accuracy, so each is on the front; every (k + ½, k) and
    # (k, k − ½) is dominated by (k, k); a copy of a front point is on the front too.
    front = [(float(k), float(k)) for k in range(1, 6)]
    dominated = [(k + 0.5, float(k)) for k in range(1, 6)] + [(k, k - 0.5) for k in range(1, 6)]
    points = [*dominated, *front, front[2]]
    assert pareto_front(points) == [False] * len(dominated) + [True] * (len(front) + 1)
    assert pareto_front([(1.0, 90.0)]) == [True]


def test_configurations_average_seeds_and_mark_the_front():
    def row(config: str, seed: int, accuracy: float, energy: float) -> dict:
        measures = dict.fromkeys(sweep.SPEC_MEASURES, 1)
        return {
            "id": f"{config}{seed}", "config": config, "rule": config, "seed": seed,
            "accuracy_pct": accuracy, "energy_pj": energy, "inference_pj": energy / 2,
            "learning_pj": energy / 2, "learning_overhead_pct": 100.0, **measures,
        }  # fmt: skip

    rows = [row("a", 0, 80, 10), row("a", 1, 90, 10), row("b", 0, 84, 5), row("c", 0, 85, 12)]
    configs = {c["config"]: c for c in configurations(rows)}
    assert configs["a"]["accuracy_pct"] == 85 and configs["a"]["seeds"] == 2
    assert math.isclose(configs["a"]["accuracy_std"], math.sqrt(50))
    # c ties a's mean accuracy at more energy; b is cheaper than a but less accurate
    assert {k: c["pareto"] for k, c in configs.items()} == {"a": True, "b": True, "c": False}
