"""Verilog emission: the core for a spec, and a manifest that says what was generated."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from quant.atomic import atomic_write_text
from quant.counters import KINDS, PHASES
from quant.spec import CoreSpec, spec_to_toml
from rtl.core import LearningCore, spec_hash
from rtl.memory_map import COUNTER_BITS, REGISTERS, MemoryMap, counter_address

TOP = "plasticore_core"


def verilog_text(spec: CoreSpec, weights: Sequence[np.ndarray] | None = None) -> str:
    """The core as Verilog; `weights` preload the weight memories (else zero)."""
    core = LearningCore(spec, weights)
    return verilog.convert(core, name=TOP, emit_src=False)


def manifest(spec: CoreSpec) -> dict:
    """Spec hash, parameters and memory map: what a driver needs to talk to the core."""
    mmap = MemoryMap(spec)
    return {
        "top": TOP,
        "spec_hash": f"0x{spec_hash(spec):08x}",
        "spec_toml": spec_to_toml(spec),
        "bus": {"protocol": "wishbone-b4-classic", "data_bits": 32, "addr_bits": mmap.addr_bits},
        "registers": {
            name: {"address": offset, "access": access, "doc": doc}
            for name, (offset, access, doc) in REGISTERS.items()
        },
        "counters": {
            f"{phase}.{kind}": counter_address(phase, kind) for phase in PHASES for kind in KINDS
        },
        "counter_bits": COUNTER_BITS,
        "regions": [
            {"name": r.name, "base": r.base, "size": r.size, "access": r.access, "doc": r.doc}
            for r in mmap.regions
        ],
        "lane_stride": 1 << mmap.lane_bits,
        "block_bits": [mmap.block_bits(k) for k in range(len(spec.hidden) + 1)],
    }


def write_core(
    spec: CoreSpec, out_dir: str | Path, weights: Sequence[np.ndarray] | None = None
) -> tuple[Path, Path]:
    """Write `<out>/<TOP>.v` and `<out>/manifest.json` (each atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source, info = out / f"{TOP}.v", out / "manifest.json"
    atomic_write_text(source, verilog_text(spec, weights))
    atomic_write_text(info, json.dumps(manifest(spec), indent=2) + "\n")
    return source, info
