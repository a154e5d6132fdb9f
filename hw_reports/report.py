"""`plasticore report`: what learning costs in silicon for one spec.

The report runs the learning core and its inference-only twin (`CoreSpec.inference_only`)
on the same samples and reads off, side by side: energy per sample per phase and unit
(golden-model counters priced by the energy table), agreement of the RTL's hardware
counters with the golden model's (co-simulation), memories and the learning-state share,
area per unit (generic synthesis), FPGA use and Fmax (ECP5 place and route, iCE40 fit),
and the published chips' figures as theirs. Each stage's result is kept under
`<out>/stages/`, keyed by everything it depends on, so an interrupted report resumes.
"""

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hw_reports.energy import (
    UNIT_OF_KIND,
    EnergyReport,
    EnergyTable,
    check_counters,
    energy,
    load_table,
)
from hw_reports.estimate import ResourceEstimate, estimate
from hw_reports.fpga import check_seeds
from hw_reports.markdown import markdown_table
from hw_reports.published import PUBLISHED
from quant.atomic import atomic_write_json, atomic_write_text
from quant.counters import PHASES
from quant.errors import PlasticoreError
from quant.spec import CoreSpec, spec_to_toml
from rtl.core import MemoryInfo, memories, unindexed
from sim.chip.golden import GoldenCore
from sim.chip.params import initial_kernels, initial_weights
from sim.chip.train import dataset_codes
from sim.data import load_dataset


@dataclass(frozen=True)
class ReportConfig:
    """What the report measures and how much of it; the spec says what is measured."""

    data: str = "digits"
    data_root: str | None = None
    samples: int = 200  # training samples priced for energy (online learning from the start)
    cosim_samples: int = 4  # samples whose RTL counters must equal the golden model's; 0: skip
    sim: str = "verilator"
    synth: bool = True  # generic synthesis: area per unit
    fpga: bool = True  # ECP5 place and route, iCE40 fit
    table: str | None = None  # energy table; None: the shipped 45 nm table
    pnr_seeds: tuple[int, ...] = ()  # further nextpnr seeds for the learning core's Fmax

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise PlasticoreError(f"samples must be at least 1, got {self.samples}")
        if self.cosim_samples < 0:
            raise PlasticoreError(f"cosim_samples must be >= 0, got {self.cosim_samples}")
        check_seeds(self.pnr_seeds, "pnr_seeds")


def _key(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _digest(path: Path) -> str:
    """Stages that read generated Verilog are keyed by its content: a changed core reruns."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rtl_digest() -> str:
    """The RTL generator's source: a co-simulation reruns when the core's code changes."""
    import rtl

    files = sorted(Path(rtl.__file__).parent.glob("*.py"))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _stage(work: Path, name: str, key: str, run: Callable[[], dict], progress: bool) -> dict:
    """`run()`'s result, kept as `<work>/<name>-<key>.json`: a finished stage is not redone."""
    path = work / f"{name}-{key}.json"
    if path.exists():
        if progress:
            print(f"  {name}: kept from {path}", file=sys.stderr)
        return json.loads(path.read_text())["value"]
    began = time.perf_counter()
    if progress:
        print(f"  {name} ...", file=sys.stderr)
    value = run()
    seconds = round(time.perf_counter() - began, 1)
    atomic_write_json(path, {"stage": name, "seconds": seconds, "value": value})
    if progress:
        print(f"  {name}: {seconds} s", file=sys.stderr)
    return value


def golden_counters(
    spec: CoreSpec,
    weights: Sequence[np.ndarray],
    x: np.ndarray,
    labels: np.ndarray,
    kernels: np.ndarray | None = None,
) -> dict:
    """Counters of `spec` over the samples (online learning, or inference for rule none),
    and the front end's kernel reads among them."""
    core = GoldenCore(spec, [np.array(w) for w in weights], kernels=kernels)
    for sample, label in zip(x, labels, strict=True):
        if spec.rule == "none":
            core.infer(sample)
        else:
            core.learn(sample, int(label))
    return {"counters": core.counters.as_dict(), "kernel_reads": core.kernel_reads}


def _energy_json(report: EnergyReport) -> dict:
    return {
        "per_sample_pj": {p: report.phase(p) for p in PHASES},
        "per_kind_pj": report.per_kind,
        "per_unit_pj": {p: report.by_unit(p) for p in PHASES},
        "prices": {
            p: {k: {"pj": v.pj, "as": v.what} for k, v in kinds.items()}
            for p, kinds in report.prices.items()
        },
    }


def _memory_json(mems: Sequence[MemoryInfo]) -> dict:
    weight_bits = sum(m.bits for m in mems if m.name.startswith("weights"))
    learning_bits = sum(m.bits for m in mems if m.learning)
    return {
        "memories": [{**asdict(m), "bits": m.bits, "learning": m.learning} for m in mems],
        "weight_bits": weight_bits,
        "learning_bits": learning_bits,
        "learning_share_of_weights": learning_bits / weight_bits,
    }


def _cosim(spec: CoreSpec, weights, kernels, x, labels, build: Path, config: ReportConfig) -> dict:
    from plasticore.verify import verify  # cocotb and the simulators only when asked for

    report = verify(spec, weights, x, labels, build, learn=True, sim=config.sim, kernels=kernels)
    return {
        "samples": report.samples,
        "sim": config.sim,
        "mismatches": list(report.mismatches),
        "counter_differences": check_counters(report.golden_counters, report.rtl_counters),
        "rtl_counters": report.rtl_counters,
        "golden_counters": report.golden_counters,
        "cycles_per_sample": {p: report.cycles_per_sample(p) for p in PHASES},
        "ideal_cycles_per_sample": {p: report.ideal_cycles_per_sample(p) for p in PHASES},
    }


def build_report(
    spec: CoreSpec,
    out_dir: str | Path,
    config: ReportConfig,
    weights: Sequence[np.ndarray] | None = None,
    progress: bool = True,
    kernels: np.ndarray | None = None,
) -> dict:
    """Measure `spec` against its inference-only twin; write report.json, report.md, plots.
    Weights and a front end's kernels default to `initial_weights` and `initial_kernels`."""
    if spec.rule == "none":
        raise PlasticoreError(
            f"spec {spec.name!r} has rule 'none': the report measures a learning core "
            "against its inference-only twin"
        )
    out = Path(out_dir)
    work = out / "stages"
    work.mkdir(parents=True, exist_ok=True)
    variants = {"learning": spec, "inference_only": spec.inference_only()}
    weights = [np.asarray(w) for w in (weights or initial_weights(spec))]
    if spec.conv:
        kernels = spec.kernel_array(initial_kernels(spec) if kernels is None else kernels)
    dataset = load_dataset(config.data, seed=0, root=config.data_root)
    x, _ = dataset_codes(spec, dataset)
    n = min(config.samples, len(x))
    labels = dataset.y_train
    arrays = [*weights, *([kernels] if spec.conv else [])]
    w_key = hashlib.sha256(b"".join(np.ascontiguousarray(a, np.int64).tobytes() for a in arrays))
    base = (spec_to_toml(spec), w_key.hexdigest(), config.data, n)
    table = load_table(config.table)

    runs = {
        variant: _stage(
            work,
            f"counters-{variant}",
            _key(*base, variant, "with kernel reads"),
            lambda s=s: golden_counters(s, weights, x[:n], labels[:n], kernels),
            progress,
        )
        for variant, s in variants.items()
    }
    mems = {variant: memories(s) for variant, s in variants.items()}
    counts = {variant: run["counters"] for variant, run in runs.items()}
    energies = {
        variant: energy(s, counts[variant], n, table, mems[variant], runs[variant]["kernel_reads"])
        for variant, s in variants.items()
    }
    result: dict = {
        "spec": spec.name,
        "rule": spec.rule,
        "spec_toml": spec_to_toml(spec),
        "front_end": spec.conv,
        "data": config.data,
        "samples": n,
        "table": {
            "name": table.name,
            "node_nm": table.node_nm,
            "source": table.source,
            "transistor_um2": table.transistor_area,
            "sram_bit_um2": table.sram_bit_area,
        },
        "energy": {v: _energy_json(e) for v, e in energies.items()},
        "learning_energy_overhead_pct": 100 * energies["learning"].learning_overhead,
        "memory": {v: _memory_json(m) for v, m in mems.items()},
        "counters": counts,
        "syn_ops_per_sample": counts["learning"]["inference"]["syn_ops"] / n,
    }
    result["pj_per_sop"] = energies["learning"].phase("inference") / result["syn_ops_per_sample"]
    if config.cosim_samples:
        m = min(config.cosim_samples, len(x))
        result["cosim"] = _stage(
            work,
            "cosim",
            _key(*base, m, config.sim, _rtl_digest()),
            lambda: _cosim(spec, weights, kernels, x[:m], labels[:m], work / "cosim", config),
            progress,
        )
    if progress and (config.synth or config.fpga):
        print("  synthesis and place and route take minutes per core", file=sys.stderr)
    estimates = {v: estimate(s, mems[v]) for v, s in variants.items()}
    result["estimate"] = {v: asdict(e) for v, e in estimates.items()}
    result.update(_hardware(variants, mems, estimates, table, work, config, progress))
    write_report(result, out)
    return result


# Area units: a submodule's own logic by its name's prefix, a memory by its name's prefix.
LOGIC_UNITS = {
    "mac": "MAC lanes",
    "neurons": "neuron lanes",
    "factors": "learning factor units",
    "update": "update lanes",
    "counters": "performance counters",
    "emitter": "event emitter",
}
MEMORY_UNITS = {
    "weights": "weight memory",
    "state": "neuron-state memory",
    "factors": "learning memories",
    "rewards": "learning memories",
    "projection": "learning memories",
    "fired": "learning memories",
}
TOP_UNIT = "sequencer, bus, LFSRs"
# The convolutional front end: its module and everything in it, logic and memories.
FRONT_END, FRONT_END_UNIT = "front_end", "convolutional front end"
VARIANTS = ("learning", "inference_only")
OTHER_MEMORIES = "input and event memories"


def area_by_unit(synthesis: dict, transistor_um2: float, bit_um2: float) -> dict[str, float]:
    """ASIC-style area (µm²) per unit: logic transistors and memory bits, each priced."""
    units: dict[str, float] = {}
    for path, module in synthesis["modules"].items():
        parts = path.split(".")[1:]
        unit = LOGIC_UNITS.get(unindexed(parts[-1]), TOP_UNIT) if parts else TOP_UNIT
        if FRONT_END in parts or parts == ["conv_emitter"]:
            unit = FRONT_END_UNIT
        units[unit] = units.get(unit, 0.0) + module["transistors"] * transistor_um2
    for memory in synthesis["memories"]:
        unit = MEMORY_UNITS.get(unindexed(memory["name"]), OTHER_MEMORIES)
        if memory["name"].split(".")[0] == FRONT_END:
            unit = FRONT_END_UNIT
        units[unit] = units.get(unit, 0.0) + memory["bits"] * bit_um2
    return units


def _hardware(
    variants: dict[str, CoreSpec],
    mems: dict[str, tuple[MemoryInfo, ...]],
    estimates: dict[str, ResourceEstimate],
    table: EnergyTable,
    work: Path,
    config: ReportConfig,
    progress: bool,
) -> dict:
    """Generic synthesis (area per unit) of both cores; ECP5 place and route of both and an
    iCE40 UP5K fit of the learning core. Weights are left zero: they do not change area."""
    from hw_reports.fpga import ICE40_RAM_BITS, fit_ice40, implement_ecp5, smallest_ecp5
    from hw_reports.synth import synthesize_generic
    from rtl.emit import write_core

    result: dict = {}
    if not (config.synth or config.fpga):
        return result
    sources = {}
    for variant, s in variants.items():
        sources[variant], _ = write_core(s, work / f"rtl-{variant}")
    if config.synth:
        generic = {
            variant: _stage(
                work,
                f"synth-{variant}",
                _key(_digest(sources[variant]), "generic"),
                lambda v=variant: synthesize_generic(sources[v], work / f"synth-{v}").to_json(),
                progress,
            )
            for variant in variants
        }
        per_unit = {
            v: area_by_unit(g, table.transistor_area, table.sram_bit_area)
            for v, g in generic.items()
        }
        totals = {v: sum(units.values()) for v, units in per_unit.items()}
        result["area"] = {
            "synthesis": generic,
            "per_unit_um2": per_unit,
            "total_um2": totals,
            "learning_overhead_pct": 100 * (totals["learning"] / totals["inference_only"] - 1),
        }
    if config.fpga:
        devices = {v: smallest_ecp5(e.luts, e.dsps, e.brams) for v, e in estimates.items()}
        seeds = {v: config.pnr_seeds if v == "learning" else () for v in variants}
        result["fpga"] = {
            variant: _stage(
                work,
                f"ecp5-{variant}",
                _key(_digest(sources[variant]), "ecp5", devices[variant], *seeds[variant]),
                lambda v=variant: implement_ecp5(
                    sources[v], work / f"ecp5-{v}", devices[v], seeds=seeds[v]
                ).to_json(),
                progress,
            )
            for variant in variants
        }
        bits = sum(m.bits for m in mems["learning"])
        if bits > ICE40_RAM_BITS:  # no need to synthesise what cannot fit
            result["ice40"] = {
                "device": "iCE40-UP5K",
                "fits": False,
                "failure": f"not attempted: {bits:,} memory bits, the UP5K's block RAM "
                f"holds {ICE40_RAM_BITS:,}",
            }
        else:
            result["ice40"] = _stage(
                work,
                "ice40-learning",
                _key(_digest(sources["learning"]), "ice40"),
                lambda: fit_ice40(sources["learning"], work / "ice40-learning").to_json(),
                progress,
            )
    return result


def render_markdown(result: dict) -> str:
    """The report as Markdown: energy, memory, agreement, area, FPGA, published chips."""
    learning, twin = result["energy"]["learning"], result["energy"]["inference_only"]
    lines = [
        f"# Hardware report: {result['spec']}",
        "",
        f"Energy priced with `{result['table']['name']}` ({result['table']['source']}), "
        f"from the golden model's counters over {result['samples']} training samples of "
        f"`{result['data']}` (online learning from the given weights). Priced: the datapath "
        "and the memory arrays the counters see; not priced: clock tree, control, leakage "
        "and the event-list and fired-lane memories"
        + (
            " (and the front end's current memory: §8 counts its adds, not its accesses)."
            if result["front_end"]
            else "."
        ),
        "",
        "## Energy per sample (pJ)",
        "",
    ]
    units = sorted(
        {
            u
            for data in (learning, twin)
            for p in PHASES
            for u, v in data["per_unit_pj"][p].items()
            if v
        }
    )
    rows = []
    for label, data, phase in (
        ("learning core, inference", learning, "inference"),
        ("learning core, learning", learning, "learning"),
        ("inference-only core", twin, "inference"),
    ):
        per_unit = data["per_unit_pj"][phase]
        rows.append(
            [label]
            + [f"{per_unit.get(u, 0.0):,.0f}" for u in units]
            + [f"{data['per_sample_pj'][phase]:,.0f}"]
        )
    lines += [markdown_table(["", *units, "total"], rows), ""]
    lines += [
        f"Learning adds **{result['learning_energy_overhead_pct']:.1f} %** to the energy of "
        f"an inference; {result['pj_per_sop']:.2f} pJ per synaptic operation in inference "
        f"({result['syn_ops_per_sample']:,.0f} per sample).",
        "",
        "How each counted event is priced:",
        "",
        markdown_table(
            ["kind", "inference", "learning"],
            [
                [
                    kind,
                    f"{learning['prices']['inference'][kind]['pj']:.3g} pJ "
                    f"({learning['prices']['inference'][kind]['as']})",
                    f"{learning['prices']['learning'][kind]['pj']:.3g} pJ "
                    f"({learning['prices']['learning'][kind]['as']})",
                ]
                for kind in UNIT_OF_KIND
            ],
        ),
        "",
        "## Memories",
        "",
    ]
    mem = result["memory"]["learning"]
    lines += [
        markdown_table(
            ["memory", "width", "depth", "bits", "learning only"],
            [
                [
                    m["name"],
                    m["width"],
                    m["depth"],
                    f"{m['bits']:,}",
                    "yes" if m["learning"] else "",
                ]
                for m in mem["memories"]
            ],
        ),
        "",
        f"Learning-state memory: {mem['learning_bits']:,} bits, "
        f"**{100 * mem['learning_share_of_weights']:.2f} %** of the weight memory "
        f"({mem['weight_bits']:,} bits).",
        "",
    ]
    lines += _hardware_markdown(result)
    if "cosim" in result:
        cosim = result["cosim"]
        agree = not cosim["mismatches"] and not cosim["counter_differences"]
        lines += [
            "## RTL against the golden model",
            "",
            f"{cosim['samples']} samples co-simulated in {cosim['sim']} with learning: "
            + (
                "outputs, weights and every hardware counter except cycles equal the golden "
                "model's."
                if agree
                else "**they differ**: "
                + "; ".join((cosim["mismatches"] + cosim["counter_differences"])[:3])
            ),
            "",
            markdown_table(
                ["phase", "RTL cycles/sample", "ideal (syn. ops ÷ lanes)", "lane utilisation"],
                [
                    [
                        p,
                        f"{cosim['cycles_per_sample'][p]:.0f}",
                        f"{cosim['ideal_cycles_per_sample'][p]:.0f}",
                        _pct(_utilisation(cosim, p)),
                    ]
                    for p in PHASES
                ],
            ),
            "",
        ]
    lines += [
        "## Published chips (their figures, their nodes)",
        "",
        markdown_table(
            ["chip", "node", "rule", "area overhead", "energy overhead", "nJ/sample", "pJ/SOP",
             "learning memory", "what"],
            [
                [
                    f"{chip.name} ({chip.reference})",
                    f"{chip.node_nm} nm",
                    chip.rule,
                    _pct(chip.area_overhead_pct),
                    _pct(chip.energy_overhead_pct),
                    _num(chip.energy_per_sample_nj),
                    _num(chip.pj_per_sop),
                    _pct(chip.learning_memory_pct),
                    chip.note,
                ]
                for chip in PUBLISHED
            ]
            + [
                [
                    f"this core ({result['spec']}, model)",
                    f"{result['table']['node_nm']:g} nm",
                    result["rule"],
                    _pct(result.get("area", {}).get("learning_overhead_pct")),
                    _pct(result["learning_energy_overhead_pct"]),
                    _num(learning["per_sample_pj"]["inference"] / 1000),
                    _num(result["pj_per_sop"]),
                    _pct(100 * mem["learning_share_of_weights"]),
                    "energy of a learning step over an inference; nJ per inference",
                ]
            ],
        ),
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def _hardware_markdown(result: dict) -> list[str]:
    lines: list[str] = []
    if "area" in result:
        area = result["area"]
        units = sorted({u for v in area["per_unit_um2"].values() for u in v})
        per_unit = area["per_unit_um2"]
        rows = []
        for unit in units:
            values = [per_unit[v].get(unit, 0.0) for v in VARIANTS]
            rows.append([unit, *(f"{x:,.0f}" for x in values), f"{values[0] - values[1]:+,.0f}"])
        rows.append(
            ["total", *(f"{area['total_um2'][v]:,.0f}" for v in VARIANTS),
             f"{area['total_um2']['learning'] - area['total_um2']['inference_only']:+,.0f}"]
        )  # fmt: skip
        synth = area["synthesis"]
        lines += [
            "## Area (generic synthesis, ASIC-style estimate in µm²)",
            "",
            "Logic: the transistors of Yosys's generic CMOS netlist (`stat -tech cmos`) at "
            f"{result['table']['transistor_um2']} µm² each; memories: bits at "
            f"{result['table']['sram_bit_um2']} µm² per bit ({result['table']['name']}).",
            "",
            markdown_table(["unit", "learning core", "inference-only core", "learning adds"], rows),
            "",
            f"Learning adds **{area['learning_overhead_pct']:.1f} %** to the area of the "
            f"inference-only core. Generic cells: {synth['learning']['cells']:,} vs "
            f"{synth['inference_only']['cells']:,}; flip-flops "
            f"{synth['learning']['flip_flops']:,} vs {synth['inference_only']['flip_flops']:,}.",
            "",
        ]
    estimates = result["estimate"]
    fpga = result.get("fpga")
    fields = (("LUT4 sites", "luts"), ("flip-flops", "flip_flops"),
              ("DSP (MULT18X18D)", "dsps"), ("BRAM (DP16KD)", "brams"))  # fmt: skip

    def cell(variant: str, key: str) -> str:
        guess = estimates[variant][key]
        if fpga is None:
            return f"{guess:,}"
        measured = fpga[variant][key]
        error = f"{100 * (guess / measured - 1):+.1f} %" if measured else "–"
        return f"{measured:,} (estimate {guess:,}, {error})"

    rows = [[label, *(cell(v, key) for v in VARIANTS)] for label, key in fields]
    title = (
        "## FPGA: ECP5 (Yosys + nextpnr, the smallest device the estimate fits)"
        if fpga
        else ("## FPGA: ECP5 estimate (no place and route run)")
    )
    if fpga:
        rows.insert(0, ["device", *(fpga[v]["device"] for v in VARIANTS)])
        rows.append(["Fmax (MHz)", *(_mhz(fpga[v]["fmax_mhz"]) for v in VARIANTS)])
    lines += [
        title,
        "",
        "The estimate comes from the spec alone in seconds (`hw_reports/estimate.py`); "
        "its error against place and route is shown where both exist."
        + (
            " It does not model the convolutional front end's logic." if result["front_end"] else ""
        ),
        "",
        markdown_table(["", "learning core", "inference-only core"], rows),
        "",
    ]
    if fpga:
        learning = fpga["learning"]
        if learning.get("seed_fmax_mhz"):
            runs = ", ".join(
                [f"{_mhz(learning['fmax_mhz'])} (default seed)"]
                + [f"{_mhz(fmax)} (seed {seed})" for seed, fmax in learning["seed_fmax_mhz"]]
            )
            lines += [
                f"Fmax of the learning core over nextpnr placement seeds: {runs} MHz; "
                f"median **{_mhz(learning['median_fmax_mhz'])} MHz**.",
                "",
            ]
        path = learning["place_route"]["critical_path"]
        if path:
            lines += [
                f"Critical path of the learning core: {path['delay_ns']:.2f} ns, "
                f"{path['logic_levels']} logic level{'' if path['logic_levels'] == 1 else 's'}, "
                f"from `{path['source']}` to "
                f"`{path['sink']}`.",
                "",
            ]
    if "ice40" in result:
        ice = result["ice40"]
        lines += [
            f"{ice['device']}: "
            + (
                f"the learning core fits (Fmax {_num(ice['fmax_mhz'])} MHz)."
                if ice["fits"]
                else f"the learning core is refused ({ice['failure']})."
            ),
            "",
        ]
    return lines


def _utilisation(cosim: dict, phase: str) -> float | None:
    measured = cosim["cycles_per_sample"][phase]
    return 100 * cosim["ideal_cycles_per_sample"][phase] / measured if measured else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _mhz(value: float | None) -> str:
    """A clock to 0.1 MHz: seeds differ by a few percent, which three digits would round off."""
    return "–" if value is None else f"{value:.1f}"


def write_report(result: dict, out: Path) -> None:
    """report.json, report.md and the plots, each written atomically."""
    from hw_reports.plots import write_plots

    atomic_write_json(out / "report.json", result)
    atomic_write_text(out / "report.md", render_markdown(result) + "\n")
    write_plots(result, out)
