"""Design-space sweeps: many cores derived from one spec, each learning on chip, side by side.

A grid file (`sweeps/*.toml`, `docs/sweeps.md`) names a base `CoreSpec`, axes of spec
fields (learning rule, hidden layers, weight width, any other field), conditional spec
overrides, the training seeds and what to learn on. Every combination is a point: its core
learns on chip in the golden model, its counters are priced for energy and its spec gives
the analytical area, with no synthesis. A point is fully determined by its parameters, so
the result is the same on any backend (a local process pool or Ray) and a finished point,
kept as `points/<id>.json`, is never run again; the tables and the Pareto plot are rebuilt
from those files.
"""

import csv
import hashlib
import io
import itertools
import json
import logging
import multiprocessing
import os
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from hw_reports.energy import EnergyTable, energy, load_table
from hw_reports.estimate import estimate
from hw_reports.markdown import markdown_table
from quant.atomic import atomic_write_json, atomic_write_text, output_dir
from quant.errors import ConfigError, PlasticoreError
from quant.spec import CoreSpec, load_spec, spec_to_toml
from rtl.core import memories
from sim.chip.params import at_width, initial_weights
from sim.chip.train import ChipTrainConfig, train_chip
from sim.data import DATASET_NAMES, Dataset, load_dataset

BACKENDS = ("local", "ray")
GRID_KEYS = ("base", "table", "train", "axes", "override")
OVERRIDE_KEYS = ("where", "set")
SPEC_FIELDS = tuple(f.name for f in fields(CoreSpec) if f.name != "name")
# Axes come in this order, then the other fields in CoreSpec's order; seeds vary fastest.
LEADING_AXES = ("rule", "hidden", "weight_bits")
AREA_FIELDS = ("luts", "flip_flops", "dsps", "brams", "lutram")
POINTS = "points"


def _freeze(value: Any) -> Any:
    """TOML lists as tuples, so that axis values compare, hash and build specs."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _show(value: Any) -> str:
    """An axis value in a table cell: hidden layers as `100-50`."""
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    return str(value)


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class Training:
    """What every point learns on and for how long (the `[train]` table)."""

    data: str = "digits"
    data_root: str | None = None
    epochs: int = 1
    init: str = "random"
    seeds: tuple[int, ...] = (0,)
    train_samples: int | None = None  # the first N of the training split; None: all
    test_samples: int | None = None

    def __post_init__(self) -> None:
        if self.data not in DATASET_NAMES:
            raise ConfigError(
                f"train.data must be one of {', '.join(DATASET_NAMES)}, got {self.data!r}"
            )
        _check_count("train.epochs", self.epochs)
        for name in ("train_samples", "test_samples"):
            if getattr(self, name) is not None:
                _check_count(f"train.{name}", getattr(self, name))
        seeds = _freeze(self.seeds)
        if not isinstance(seeds, tuple) or not seeds:
            raise ConfigError(f"train.seeds must be a non-empty list of integers, got {seeds!r}")
        for seed in seeds:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ConfigError(f"train.seeds must hold integers, got {seed!r}")
            self.chip_config(seed)
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"train.seeds holds a value twice: {list(seeds)}")
        object.__setattr__(self, "seeds", seeds)

    def chip_config(self, seed: int) -> ChipTrainConfig:
        try:
            return ChipTrainConfig(self.data, self.data_root, self.epochs, seed, self.init)
        except ConfigError as error:
            raise ConfigError(f"train.{error}") from error


@dataclass(frozen=True)
class Override:
    """Spec fields set on the points whose axis values match `where` (an `[[override]]`)."""

    where: tuple[tuple[str, Any], ...]
    changes: tuple[tuple[str, Any], ...]

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "where", tuple((k, _freeze(v)) for k, v in dict(self.where).items())
        )
        object.__setattr__(
            self, "changes", tuple((k, _freeze(v)) for k, v in dict(self.changes).items())
        )

    def matches(self, settings: Mapping[str, Any]) -> bool:
        return all(settings[key] == value for key, value in self.where)


@dataclass(frozen=True)
class Point:
    """One run: a core (axis values, overrides applied), a training seed, how it learns."""

    settings: tuple[tuple[str, Any], ...]  # axis values in axis order
    seed: int
    start: CoreSpec  # at the base's weight width; `spec` is it at the point's width
    training: Training
    table: EnergyTable

    @property
    def weight_bits(self) -> int:
        return dict(self.settings).get("weight_bits", self.start.weight_bits)

    @property
    def spec(self) -> CoreSpec:
        """The core at its weight width (`at_width` rescales thresholds and learning-rate
        shifts; given no weights, it rescales only the spec)."""
        return at_width(self.start, [], self.weight_bits)[0]

    def params(self, with_seed: bool = True) -> dict:
        """Everything the result depends on, as JSON values; the point file keeps it."""
        training = asdict(self.training)
        del training["seeds"], training["data_root"]  # where files live is not a parameter
        params = {
            "settings": dict(self.settings),
            "start": spec_to_toml(self.start),  # stable when optional spec fields are off
            "weight_bits": self.weight_bits,
            "training": training,
            "table": {"name": self.table.name, "digest": _digest(asdict(self.table))},
        }
        if with_seed:
            params["seed"] = self.seed
        return json.loads(json.dumps(params))

    @property
    def id(self) -> str:
        return _digest(self.params())

    @property
    def config_id(self) -> str:
        """Shared by the points that differ only in their seed."""
        return _digest(self.params(with_seed=False))

    def describe(self) -> str:
        return ", ".join(f"{k}={_show(v)}" for k, v in (*self.settings, ("seed", self.seed)))


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _axis_order(keys: Iterable[str]) -> list[str]:
    order = [*LEADING_AXES, *(f for f in SPEC_FIELDS if f not in LEADING_AXES)]
    return sorted(keys, key=order.index)


def _check_axis(key: str, values: object) -> None:
    if key == "name":
        raise ConfigError("axes.name: not an axis, every point keeps the base's name")
    if key not in SPEC_FIELDS:
        raise ConfigError(f"axes.{key}: unknown key, not a CoreSpec field")
    if not isinstance(values, tuple) or not values:
        raise ConfigError(f"axes.{key} must be a non-empty list of values, got {values!r}")
    for k, value in enumerate(values):
        if value in values[:k]:
            raise ConfigError(f"axes.{key} holds {_show(value)!r} twice")


def _check_override(k: int, override: Override, axes: Mapping[str, tuple]) -> None:
    where = f"override[{k}]"
    if not override.where:
        raise ConfigError(f"{where}.where must name at least one axis")
    if not override.changes:
        raise ConfigError(f"{where}.set must name at least one spec field")
    for key, value in override.where:
        if key not in axes:
            raise ConfigError(f"{where}.where.{key}: not an axis of this grid")
        if value not in axes[key]:
            raise ConfigError(f"{where}.where.{key}: {_show(value)!r} is not a value of axes.{key}")
    for key, _ in override.changes:
        if key not in SPEC_FIELDS:
            raise ConfigError(f"{where}.set.{key}: unknown key, not a CoreSpec field")
        if key in axes:
            raise ConfigError(f"{where}.set.{key}: an axis of this grid, vary it there")
        if key == "weight_bits":
            raise ConfigError(
                f"{where}.set.weight_bits: widths come from the weight_bits axis, which also "
                "rescales thresholds and learning-rate shifts"
            )


@dataclass(frozen=True)
class Grid:
    """A validated sweep: the base spec, its axes, overrides, training and energy table.

    Construction derives every point, so a grid that exists can run: a bad value is refused
    here, naming its key, not halfway through a sweep."""

    base: CoreSpec
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    training: Training = Training()
    overrides: tuple[Override, ...] = ()
    table: EnergyTable = field(default_factory=load_table)
    name: str = "sweep"

    def __post_init__(self) -> None:
        given = {key: _freeze(values) for key, values in dict(self.axes).items()}
        if not given:
            raise ConfigError("axes must name at least one axis")
        for key, values in given.items():
            _check_axis(key, values)
        object.__setattr__(self, "axes", tuple((k, given[k]) for k in _axis_order(given)))
        object.__setattr__(self, "overrides", tuple(self.overrides))
        for k, override in enumerate(self.overrides):
            _check_override(k, override, given)
        self.points()

    def configurations(self) -> list[tuple[tuple[str, Any], ...]]:
        keys = [key for key, _ in self.axes]
        combos = itertools.product(*(values for _, values in self.axes))
        return [tuple(zip(keys, combo, strict=True)) for combo in combos]

    def start_spec(self, settings: tuple[tuple[str, Any], ...]) -> CoreSpec:
        """The base with the axis values and matching overrides applied (base width)."""
        values = dict(settings)
        changes = {k: v for k, v in values.items() if k != "weight_bits"}
        for override in self.overrides:
            if override.matches(values):
                changes.update(override.changes)
        where = ", ".join(f"{k}={_show(v)}" for k, v in settings)
        try:
            spec = replace(self.base, **changes)
            bits = values.get("weight_bits", spec.weight_bits)
            replace(spec, weight_bits=bits)  # checks the width before at_width computes with it
            at_width(spec, [], bits)
            spec.require_no_conv("a sweep (its area estimate)")
        except ConfigError as error:
            raise ConfigError(f"point {where}: {error}") from error
        if spec.rule == "none":
            raise ConfigError(f"point {where}: rule 'none' has nothing to learn")
        return spec

    def points(self) -> list[Point]:
        """Every point in a fixed order: configurations as the axes nest, seeds innermost."""
        return [
            Point(settings, seed, start, self.training, self.table)
            for settings in self.configurations()
            for start in (self.start_spec(settings),)
            for seed in self.training.seeds
        ]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "base": asdict(self.base),
            "axes": {key: list(values) for key, values in self.axes},
            "overrides": [{"where": dict(o.where), "set": dict(o.changes)} for o in self.overrides],
            "training": asdict(self.training),
            "table": self.table.name,
        }


def _table_of(data: Mapping, key: str, where: str = "") -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{key} must be a table, got {value!r}")
    return value


def _refuse_unknown(keys: Iterable[str], known: Iterable[str], where: str) -> None:
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(where + k for k in unknown)}")


def _overrides(entries: object) -> tuple[Override, ...]:
    if not isinstance(entries, list):
        raise ConfigError("override must be an array of tables: [[override]]")
    overrides = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"override[{k}] must be a table with 'where' and 'set'")
        _refuse_unknown(entry, OVERRIDE_KEYS, f"override[{k}].")
        where, changes = (_table_of(entry, key, f"override[{k}].") for key in OVERRIDE_KEYS)
        overrides.append(Override(tuple(where.items()), tuple(changes.items())))
    return tuple(overrides)


def _training(train: dict, root: Path) -> Training:
    _refuse_unknown(train, (f.name for f in fields(Training)), "train.")
    if isinstance(train.get("data_root"), str):
        train = {**train, "data_root": str((root / train["data_root"]).resolve())}
    return Training(**train)


def grid_from_toml(text: str, source: str = "<string>", root: Path = Path(".")) -> Grid:
    """Parse a grid file; paths in it (`base`, `table`, `train.data_root`) are relative to
    `root`, the file's folder. Every error names the file and the key."""
    try:
        data = tomllib.loads(text)
        _refuse_unknown(data, GRID_KEYS, "")
        if not isinstance(data.get("base"), str):
            raise ConfigError("base must name a CoreSpec TOML file, e.g. '../configs/digits.toml'")
        table = data.get("table")
        if table is not None and not isinstance(table, str):
            raise ConfigError(f"table must name an energy table TOML file, got {table!r}")
        return Grid(
            base=load_spec(root / data["base"]),
            axes=tuple(_table_of(data, "axes").items()),
            training=_training(_table_of(data, "train"), root),
            overrides=_overrides(data.get("override", [])),
            table=load_table(root / table if table else None),
            name=Path(source).stem,
        )
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from error
    except PlasticoreError as error:
        raise ConfigError(f"{source}: {error}") from error


def load_grid(path: str | Path) -> Grid:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read grid file: {error.strerror}") from error
    return grid_from_toml(text, str(path), path.parent)


@lru_cache(maxsize=2)
def _dataset(data: str, root: str | None, seed: int) -> Dataset:
    return load_dataset(data, seed=seed, root=root)


def _subset(dataset: Dataset, train: int | None, test: int | None) -> Dataset:
    return replace(
        dataset,
        x_train=dataset.x_train[:train],
        y_train=dataset.y_train[:train],
        x_test=dataset.x_test[:test],
        y_test=dataset.y_test[:test],
    )


def run_point(point: Point) -> dict:
    """Learn on chip at the point's width from the base-width random start (as
    `benchmarks.chip` does), then price its counters and estimate its area. What a worker
    runs; the caller writes the result."""
    began = time.perf_counter()
    training = point.training
    spec, weights = at_width(
        point.start, initial_weights(point.start, training.init, point.seed), point.weight_bits
    )
    dataset = _subset(
        _dataset(training.data, training.data_root, point.seed),
        training.train_samples,
        training.test_samples,
    )
    chip = train_chip(
        spec, training.chip_config(point.seed), progress=False, dataset=dataset, weights=weights
    )
    samples = chip.samples_per_epoch * len(chip.history)
    counters = {
        p: {k: int(v) for k, v in c.items()} for p, c in chip.core.counters.as_dict().items()
    }
    mems = memories(spec)
    priced = energy(spec, counters, samples, point.table, mems)
    bits = sum(m.bits for m in mems)
    return {
        "id": point.id,
        "params": point.params(),
        "seconds": round(time.perf_counter() - began, 2),
        "result": {
            "spec_toml": spec_to_toml(spec),
            "test_error": float(chip.final.test_error),
            "train_error": float(chip.final.train_error),
            "train_samples": samples,
            "test_samples": len(dataset.y_test),
            "counters": counters,
            "inference_pj": priced.phase("inference"),
            "learning_pj": priced.phase("learning"),
            "learning_overhead_pct": 100 * priced.learning_overhead,
            "estimate": asdict(estimate(spec, mems)),
            "memory_bits": bits,
            "memory_area_mm2": bits * point.table.sram_bit_area / 1e6,
        },
    }


def _run_local(points: Sequence[Point], workers: int, done: Callable[[dict], None]) -> None:
    if workers == 1:
        for point in points:
            done(run_point(point))
        return
    # spawn: a forked child would inherit the parent's threads (torch, Ray) mid-state
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(points)), mp_context=context) as pool:
        futures = [pool.submit(run_point, point) for point in points]
        try:
            for future in as_completed(futures):
                done(future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _run_ray(
    points: Sequence[Point], workers: int, address: str | None, done: Callable[[dict], None]
) -> None:
    """Each point a Ray task; an instance already initialised in this process is used as
    is, else one is started (`address` None: a local one with `workers` CPUs)."""
    try:
        import ray
    except ImportError as error:
        raise PlasticoreError("backend 'ray' needs the ray package: pip install ray") from error
    started = not ray.is_initialized()
    if started:
        local = {"num_cpus": workers, "include_dashboard": False} if address is None else {}
        ray.init(address=address, logging_level=logging.WARNING, **local)
    pending: dict = {}
    try:
        task = ray.remote(num_cpus=1)(run_point)
        pending = {task.remote(point): point for point in points}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            pending.pop(ready[0])
            done(ray.get(ready[0]))
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, PlasticoreError):
            raise error.cause from None
        raise
    finally:
        for ref in pending:
            ray.cancel(ref)
        if started:
            ray.shutdown()


def _kept(path: Path, point: Point) -> bool:
    """A point file that exists and was written for exactly this point's parameters."""
    try:
        return json.loads(path.read_text())["params"] == point.params()
    except (OSError, ValueError, KeyError, TypeError):
        return False


@dataclass(frozen=True)
class SweepResult:
    points: list[dict]  # one table row per point, in grid order
    configurations: list[dict]  # seeds averaged, with the Pareto flag
    ran: tuple[str, ...]  # ids of the points run now, in the order they finished
    kept: tuple[str, ...]  # ids of the points taken from their files


def run_sweep(
    grid: Grid,
    out_dir: str | Path,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run the grid's unfinished points on `backend`, then write the tables and the plot.

    `workers`: processes (local; 1 runs in this process) or CPUs of a local Ray instance;
    default `os.cpu_count()`. `address`: a Ray cluster to join (None starts a local one)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise ConfigError("an address is for the ray backend only")
    workers = (os.cpu_count() or 1) if workers is None else workers
    _check_count("workers", workers)
    out = output_dir(out_dir)
    points = grid.points()
    todo = [p for p in points if not _kept(out / POINTS / f"{p.id}.json", p)]
    todo_ids = {p.id for p in todo}
    kept = tuple(p.id for p in points if p.id not in todo_ids)
    ran: list[str] = []
    if progress and kept:
        print(f"sweep: {len(kept)} point(s) kept from {out / POINTS}", file=sys.stderr)

    def done(record: dict) -> None:
        atomic_write_json(out / POINTS / f"{record['id']}.json", record)
        ran.append(record["id"])
        if progress:
            print(_progress_line(record, len(ran), len(todo)), file=sys.stderr, flush=True)

    if todo:
        if backend == "ray":
            _run_ray(todo, workers, address, done)
        else:
            _run_local(todo, workers, done)
    rows = [_row(p, json.loads((out / POINTS / f"{p.id}.json").read_text())) for p in points]
    result = SweepResult(rows, configurations(rows), tuple(ran), kept)
    write_outputs(grid, result, out)
    return result


def _progress_line(record: dict, k: int, total: int) -> str:
    result = record["result"]
    settings = ", ".join(
        f"{k}={_show(_freeze(v))}" for k, v in record["params"]["settings"].items()
    )
    energy_nj = (result["inference_pj"] + result["learning_pj"]) / 1000
    return (
        f"sweep [{k}/{total}] {settings}, seed={record['params']['seed']}: "
        f"accuracy {100 * (1 - result['test_error']):.2f} %, {energy_nj:.3g} nJ per "
        f"training sample, {result['estimate']['luts']:,} LUTs ({record['seconds']:.1f} s)"
    )


def _row(point: Point, record: dict) -> dict:
    """One point's table row: axis values, seed, accuracy, energy, area (no timings, so
    that the table does not depend on the machine or the backend)."""
    result = record["result"]
    return {
        "id": point.id,
        "config": point.config_id,
        **dict(point.settings),
        "seed": point.seed,
        "accuracy_pct": 100 * (1 - result["test_error"]),
        "energy_pj": result["inference_pj"] + result["learning_pj"],
        "inference_pj": result["inference_pj"],
        "learning_pj": result["learning_pj"],
        "learning_overhead_pct": result["learning_overhead_pct"],
        **{key: result["estimate"][key] for key in AREA_FIELDS},
        "memory_bits": result["memory_bits"],
        "memory_area_mm2": result["memory_area_mm2"],
    }


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Which (energy, accuracy) pairs no other pair dominates: at most the energy and at
    least the accuracy, strictly better in one. Equal pairs are both on the front."""
    return [
        not any(e <= energy_ and a >= accuracy and (e, a) != (energy_, accuracy) for e, a in points)
        for energy_, accuracy in points
    ]


MEAN_FIELDS = ("accuracy_pct", "energy_pj", "inference_pj", "learning_pj", "learning_overhead_pct")
SPEC_MEASURES = (*AREA_FIELDS, "memory_bits", "memory_area_mm2")  # equal across seeds
MEASURED = ("seed", *MEAN_FIELDS, *SPEC_MEASURES)


def configurations(rows: Sequence[dict]) -> list[dict]:
    """Rows averaged over seeds, one per configuration in first-seen order, each marked on
    or off the accuracy-energy Pareto front: seeds are noise, not design choices."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["config"], []).append(row)
    configs = []
    for group in groups.values():
        first = group[0]
        accuracy = [r["accuracy_pct"] for r in group]
        configs.append(
            {
                **{k: v for k, v in first.items() if k not in ("id", *MEASURED)},
                "seeds": len(group),
                **{key: statistics.fmean(r[key] for r in group) for key in MEAN_FIELDS},
                "accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
                **{key: first[key] for key in SPEC_MEASURES},
            }
        )
    front = pareto_front([(c["energy_pj"], c["accuracy_pct"]) for c in configs])
    return [{**c, "pareto": on} for c, on in zip(configs, front, strict=True)]


def _csv(rows: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _show(_freeze(v)) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def render_markdown(grid: Grid, result: SweepResult) -> str:
    """Configurations (front marked ★), then every point."""
    axes = [key for key, _ in grid.axes]
    t = grid.training
    limits = ", ".join(
        f"first {n} {split} samples"
        for split, n in (("training", t.train_samples), ("test", t.test_samples))
        if n
    )
    configs = markdown_table(
        [*axes, "seeds", "accuracy %", "nJ/sample", "learning +%", "LUT", "FF", "DSP", "BRAM",
         "memory mm²", "front"],
        [
            [*(_show(_freeze(c[a])) for a in axes), c["seeds"],
             f"{c['accuracy_pct']:.2f} ± {c['accuracy_std']:.2f}", f"{c['energy_pj'] / 1000:.3g}",
             f"{c['learning_overhead_pct']:.1f}", f"{c['luts']:,}", f"{c['flip_flops']:,}",
             c["dsps"], c["brams"], f"{c['memory_area_mm2']:.3f}", "★" if c["pareto"] else ""]
            for c in result.configurations
        ],
    )  # fmt: skip
    points = markdown_table(
        ["id", *axes, "seed", "accuracy %", "inference pJ", "learning pJ"],
        [
            [r["id"], *(_show(_freeze(r[a])) for a in axes), r["seed"],
             f"{r['accuracy_pct']:.2f}", f"{r['inference_pj']:,.0f}", f"{r['learning_pj']:,.0f}"]
            for r in result.points
        ],
    )  # fmt: skip
    return "\n".join([
        f"# Sweep: {grid.name}",
        "",
        f"{len(result.points)} points from `{grid.base.name}` on {t.data}, {t.epochs} "
        f"epoch(s) of on-chip learning{', ' + limits if limits else ''}. Energy per training "
        f"sample (inference and learning step) from the golden model's counters priced by "
        f"`{grid.table.name}`; area: the analytical ECP5 estimate and the memories at "
        f"{grid.table.sram_bit_area} µm² per bit (logic needs synthesis, not run in a sweep).",
        "",
        "## Configurations (mean over seeds; ★ on the accuracy-energy Pareto front)",
        "",
        configs,
        "",
        "## Points",
        "",
        points,
        "",
    ])  # fmt: skip


def write_pareto_plot(configs: Sequence[dict], axes: Sequence[str], path: Path) -> None:
    """Accuracy against energy per training sample, colour for LUTs, marker for the rule,
    the front joined by a line and labelled with its points' other axis values."""
    from hw_reports.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    rule_key = "rule" if "rule" in axes else None
    markers = dict(zip(sorted({c.get(rule_key, "") for c in configs}), "osD^v<>", strict=False))
    luts = [c["luts"] for c in configs]
    for marker_key, marker in markers.items():
        group = [c for c in configs if c.get(rule_key, "") == marker_key]
        ax.errorbar(
            [c["energy_pj"] / 1000 for c in group],
            [c["accuracy_pct"] for c in group],
            yerr=[c["accuracy_std"] for c in group],
            fmt="none",
            ecolor="0.7",
            zorder=1,
        )
        scatter = ax.scatter(
            [c["energy_pj"] / 1000 for c in group],
            [c["accuracy_pct"] for c in group],
            c=[c["luts"] for c in group],
            vmin=min(luts),
            vmax=max(luts),
            marker=marker,
            cmap="viridis",
            label=str(marker_key) or None,
            zorder=2,
        )
    front = sorted((c["energy_pj"] / 1000, c["accuracy_pct"]) for c in configs if c["pareto"])
    ax.step(*zip(*front, strict=True), where="post", color="crimson", label="Pareto front")
    for c in configs:
        if c["pareto"]:
            label = ", ".join(_show(_freeze(c[k])) for k in axes if k != rule_key)
            ax.annotate(label, (c["energy_pj"] / 1000, c["accuracy_pct"]), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")  # fmt: skip
    fig.colorbar(scatter, ax=ax, label="LUTs (estimate)")
    ax.set_xlabel("energy per training sample (nJ)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    plt.close(fig)


def write_outputs(grid: Grid, result: SweepResult, out: Path) -> None:
    """sweep.json, points.csv, configurations.csv, sweep.md and pareto.svg."""
    atomic_write_json(
        out / "sweep.json",
        {"grid": grid.describe(), "points": result.points, "configurations": result.configurations},
    )
    atomic_write_text(out / "points.csv", _csv(result.points))
    atomic_write_text(out / "configurations.csv", _csv(result.configurations))
    atomic_write_text(out / "sweep.md", render_markdown(grid, result))
    write_pareto_plot(result.configurations, [key for key, _ in grid.axes], out / "pareto.svg")
