"""The report's plots: energy per sample per phase, accesses per memory, area per unit.

SVG with fixed ids and no date, so that a regenerated report differs only where its
numbers do."""

from pathlib import Path

from quant.atomic import atomic_write_text
from quant.counters import PHASES


def pyplot():  # matplotlib is imported here: the rest of the report does not need it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "plasticore"
    return plt


def save_figure(fig, path: Path) -> None:
    import io

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    atomic_write_text(path, buffer.getvalue())


def _stacked(ax, labels: list[str], parts: dict[str, list[float]]) -> None:
    bottom = [0.0] * len(labels)
    for name, values in parts.items():
        ax.bar(labels, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.legend(fontsize=8)


def write_plots(result: dict, out: Path) -> list[Path]:
    """energy.svg, memory_accesses.svg and, after synthesis, area.svg."""
    plt = pyplot()
    written = []
    learning = result["energy"]["learning"]["per_unit_pj"]
    units = sorted({u for p in PHASES for u in learning[p]})
    fig, ax = plt.subplots(figsize=(5, 3.5))
    _stacked(ax, list(PHASES), {u: [learning[p].get(u, 0.0) / 1000 for p in PHASES] for u in units})
    ax.set_ylabel("nJ per sample")
    ax.set_title(f"{result['spec']}: energy per sample by phase")
    save_figure(fig, out / "energy.svg")
    written.append(out / "energy.svg")
    plt.close(fig)

    counters = result["counters"]["learning"]
    accesses = ("weight_reads", "weight_writes", "state_reads", "state_writes", "proj_reads")
    kinds = [k for k in (*accesses, "table_reads") if any(counters[p][k] for p in PHASES)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    _stacked(ax, kinds, {p: [counters[p][k] / result["samples"] for k in kinds] for p in PHASES})
    ax.set_ylabel("accesses per sample")
    ax.set_title(f"{result['spec']}: memory accesses per sample")
    ax.tick_params(axis="x", labelrotation=30)
    save_figure(fig, out / "memory_accesses.svg")
    written.append(out / "memory_accesses.svg")
    plt.close(fig)

    if "area" in result:
        area = result["area"]
        variants = list(area["per_unit_um2"])
        unit_names = sorted({u for v in variants for u in area["per_unit_um2"][v]})
        fig, ax = plt.subplots(figsize=(5, 3.5))
        _stacked(
            ax,
            variants,
            {u: [area["per_unit_um2"][v].get(u, 0.0) / 1e6 for v in variants] for u in unit_names},
        )
        ax.set_ylabel("mm² (estimate)")
        ax.set_title(f"{result['spec']}: area by unit")
        save_figure(fig, out / "area.svg")
        written.append(out / "area.svg")
        plt.close(fig)
    return written
