"""`plasticore rtl`'s package: a FuseSoC core whose every file exists, images that read back."""

import json
from pathlib import Path

import numpy as np
import yaml

from firmware.images import read_images
from firmware.package import core_name, write_package
from quant.spec import load_spec
from sim.chip.params import initial_weights
from tests.rtl.random_specs import random_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_package_is_complete(tmp_path: Path) -> None:
    spec = random_spec(4)  # DRTP with a projection ROM: weights and projection images
    weights = initial_weights(spec, "random")
    package = write_package(spec, weights, tmp_path)
    core = yaml.safe_load(package.core_file.read_text())
    assert core["name"] == f"plasticore:learning_core:{core_name(spec)}:0.1.0"
    listed = [
        name
        for fileset in core["filesets"].values()
        for entry in fileset["files"]
        for name in entry
    ]
    for name in listed:
        assert (tmp_path / name).is_file(), name
    hex_files = sorted(p.name for p in tmp_path.glob("*.hex"))
    assert sorted(n for n in listed if n.endswith(".hex")) == hex_files
    assert {"weights0.hex", "projection0.hex", "seeds.hex"} <= set(hex_files)
    verilog = package.verilog.read_text()
    assert all(f'$readmemh("{name}"' in verilog for name in hex_files if name != "seeds.hex")
    assert core["targets"]["default"]["toplevel"] == "plasticore_core"
    _, back = read_images(tmp_path)
    for a, b in zip(back, weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_package_of_a_core_with_front_end(tmp_path: Path) -> None:
    """`digits_conv`: the Verilog has the kernel memory (loaded by the host, so no image),
    the manifest the write-only kernels region, the C header the front end's geometry."""
    spec = load_spec(CONFIGS / "digits_conv.toml")
    package = write_package(spec, initial_weights(spec, "random"), tmp_path)
    assert not (tmp_path / "kernels.hex").exists()
    regions = {r["name"]: r for r in json.loads(package.manifest.read_text())["regions"]}
    assert regions["kernels"]["access"] == "w"
    header = (package.c_dir / "plasticore_regs.h").read_text()
    assert "#define PLC_CONV 1u" in header and "#define PLC_CONV_OUT 8u" in header
    assert f"#define PLC_KERNELS_BASE 0x{regions['kernels']['base']:X}u" in header
