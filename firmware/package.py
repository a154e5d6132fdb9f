"""Everything a user needs to put a core into a design, in one directory.

`plasticore rtl` writes it: the Verilog (loading its memories from images), the memory
images, the manifest, the C driver with its generated header, the Verilator lint
waivers, and a FuseSoC core description, so that the generated core drops into another
SoC project (`fusesoc library add`) with its images copied next to the simulation or
synthesis run, where `$readmemh` looks for them.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware.c_driver import C_FILES, write_c_driver
from firmware.header import HEADER
from firmware.images import write_images
from quant.atomic import atomic_write_text
from quant.spec import CoreSpec
from rtl.emit import TOP, manifest, verilog_text
from rtl.lint import write_waivers

VERSION = "0.1.0"


@dataclass(frozen=True)
class Package:
    """Paths of a written package."""

    verilog: Path
    manifest: Path
    core_file: Path
    images: tuple[Path, ...]
    c_dir: Path


def core_name(spec: CoreSpec) -> str:
    """The FuseSoC VLNV name part: the spec's name (an identifier) in lower case."""
    return spec.name.lower()


def fusesoc_core(spec: CoreSpec, images: Sequence[str]) -> str:
    """A CAPI2 core description of the package (YAML, file paths relative to it)."""
    lines = [
        "CAPI=2:",
        f"name: plasticore:learning_core:{core_name(spec)}:{VERSION}",
        f"description: plasticore learning core for spec '{spec.name}' "
        f"(rule {spec.rule}, Wishbone B4 slave)",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {TOP}.v: {{file_type: verilogSource}}",
    ]
    lines += [f"      - {name}: {{file_type: user, copyto: {name}}}" for name in images]
    lines += [
        "  lint_waivers:",
        "    files:",
        "      - waivers.vlt: {file_type: vlt}",
        "  driver:",
        "    files:",
    ]
    for name in (*C_FILES, HEADER):
        kind = "cSource, is_include_file: true" if name.endswith(".h") else "cSource"
        lines.append(f"      - c/{name}: {{file_type: {kind}}}")
    lines += [
        "targets:",
        "  default:",
        "    filesets: [rtl]",
        f"    toplevel: {TOP}",
        "  lint:",
        "    default_tool: verilator",
        "    filesets: [lint_waivers, rtl]",
        "    tools:",
        "      verilator:",
        "        mode: lint-only",
        "        verilator_options: [-Wall]",
        f"    toplevel: {TOP}",
        "",
    ]
    return "\n".join(lines)


def write_package(spec: CoreSpec, weights: Sequence[np.ndarray], out_dir: str | Path) -> Package:
    """Write the package of `spec` with initial `weights` into `out_dir` (files atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = write_images(spec, weights, out)
    hex_names = [path.name for path in images if path.suffix == ".hex"]
    verilog = atomic_write_text(out / f"{TOP}.v", verilog_text(spec, images=True))
    info = atomic_write_text(out / "manifest.json", json.dumps(manifest(spec), indent=2) + "\n")
    write_waivers(out)
    c_dir = write_c_driver(spec, out / "c")
    core_file = atomic_write_text(out / f"{core_name(spec)}.core", fusesoc_core(spec, hex_names))
    return Package(verilog, info, core_file, tuple(images), c_dir)
