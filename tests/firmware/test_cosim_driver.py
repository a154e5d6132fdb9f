"""End to end in co-simulation: the Python driver on the Verilog core built from images."""

from pathlib import Path

import numpy as np
import pytest

from firmware.images import write_images
from quant.spec import load_spec, spec_to_toml
from rtl.cosim import run_bench
from rtl.emit import TOP, verilog_text
from rtl.simulators import SimulatorMissing, simulator_env
from sim.chip.params import initial_weights
from sim.chip.train import dataset_codes
from sim.data import load_dataset

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SAMPLES = 6


def test_driver_loads_streams_and_reads_back(tmp_path: Path) -> None:
    try:
        simulator_env("verilator")
    except SimulatorMissing as error:
        pytest.skip(str(error))
    spec = load_spec(CONFIGS / "digits.toml")
    image = initial_weights(spec, "random", seed=3)
    loaded = initial_weights(spec, "random", seed=4)
    data = load_dataset("digits")
    x, _ = dataset_codes(spec, data)
    y = data.y_train
    build = tmp_path / "verilator"
    write_images(spec, image, build)  # the simulator runs here: $readmemh finds them
    source = tmp_path / f"{TOP}.v"
    source.write_text(verilog_text(spec, images=True))
    job = tmp_path / "job.npz"
    np.savez(
        job,
        spec=np.array(spec_to_toml(spec)),
        inputs=x[:SAMPLES],
        labels=y[:SAMPLES],
        **{f"image{k}": w for k, w in enumerate(image)},
        **{f"load{k}": w for k, w in enumerate(loaded)},
    )
    run = run_bench(
        source, TOP, "tests.firmware.driver_bench", build, extra_env={"PLASTICORE_JOB": str(job)}
    )
    assert run.tests == 1 and run.failures == 0, f"see {build / 'test.log'}"
