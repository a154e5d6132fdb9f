"""`plasticore rtl`'s package: a FuseSoC core whose every file exists, images that read back."""

from pathlib import Path

import numpy as np
import yaml

from firmware.images import read_images
from firmware.package import core_name, write_package
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
