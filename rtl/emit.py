"""Verilog emission: the core for a spec, and a manifest that says what was generated."""

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from quant.atomic import atomic_write_text
from quant.counters import KINDS, PHASES
from quant.spec import CoreSpec, spec_to_toml
from rtl.core import LearningCore
from rtl.geometry import Geometry
from rtl.memory_map import COUNTER_BITS, REGISTERS, MemoryMap, counter_address, spec_hash

TOP = "plasticore_core"


def image_memories(spec: CoreSpec) -> tuple[str, ...]:
    """The memories a memory image initialises (`firmware.images` writes `<name>.hex`)."""
    names = [name for layer in Geometry(spec).layers for name, _, _ in layer.banks]
    if spec.rule == "drtp" and spec.projection == "rom":
        names += [f"projection{k}" for k in range(len(spec.hidden))]
    return tuple(names)


def load_from_images(text: str, names: Sequence[str]) -> str:
    """Replace the word-by-word `initial` block of each memory in `names` by `$readmemh`.

    The file name is relative: simulators resolve it from their working directory, Yosys
    also from the Verilog file's directory, so images sit next to the Verilog."""
    for name in names:
        pattern = re.compile(
            rf"(  reg \[\d+:0\] {name} \[\d+:0\];\n)  initial begin\n"
            rf"(?:    {name}\[\d+\] = [^;]+;\n)+  end\n"
        )
        text, found = pattern.subn(rf'\1  initial $readmemh("{name}.hex", {name});\n', text)
        if found != 1:
            raise RuntimeError(f"memory {name!r}: {found} initialisers in the Verilog, expected 1")
    return text


def verilog_text(
    spec: CoreSpec,
    weights: Sequence[np.ndarray] | None = None,
    images: bool = False,
    poison: bool = False,
) -> str:
    """The core as Verilog; `weights` preload the weight memories (else zero).

    With `images`, the weight and projection memories load their `$readmemh` image files
    (`firmware.images`) instead of carrying their contents in the Verilog. With `poison`,
    a weight read that collides with a write returns garbage (`rtl.block_ram`)."""
    core = LearningCore(spec, weights, poison)
    text = verilog.convert(core, name=TOP, emit_src=False)
    return load_from_images(text, image_memories(spec)) if images else text


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
    spec: CoreSpec,
    out_dir: str | Path,
    weights: Sequence[np.ndarray] | None = None,
    poison: bool = False,
) -> tuple[Path, Path]:
    """Write `<out>/<TOP>.v` and `<out>/manifest.json` (each atomically); `poison` as in
    `verilog_text`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source, info = out / f"{TOP}.v", out / "manifest.json"
    atomic_write_text(source, verilog_text(spec, weights, poison=poison))
    atomic_write_text(info, json.dumps(manifest(spec), indent=2) + "\n")
    return source, info
