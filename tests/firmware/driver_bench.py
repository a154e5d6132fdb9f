"""cocotb bench: the Python driver on a core built from memory images, through the bus.

Runs inside the simulator (see `test_cosim_driver.py`). It checks that the core came up
with the image's weights, loads other weights over the bus, streams learning samples,
and compares predictions, outputs, counters and every weight with the golden model.
"""

import os

import cocotb
import numpy as np

from firmware.driver import CoreDriver
from quant.counters import KINDS, PHASES
from quant.spec import spec_from_toml
from rtl.cocotb_bus import CocotbWishbone
from sim.chip.golden import GoldenCore


@cocotb.test()
async def driver_learns_like_golden(dut: object) -> None:
    job = np.load(os.environ["PLASTICORE_JOB"])
    spec = spec_from_toml(str(job["spec"]))
    layers = len(spec.layer_sizes) - 1
    bus = CocotbWishbone(dut)
    await bus.start()
    driver = CoreDriver(bus, spec)
    await driver.identify()
    for k in range(layers):
        np.testing.assert_array_equal(await driver.read_weights(k), job[f"image{k}"])
    loaded = [job[f"load{k}"] for k in range(layers)]
    await driver.load_weights(loaded)
    golden = GoldenCore(spec, loaded)
    for s, (x, y) in enumerate(zip(job["inputs"], job["labels"], strict=True)):
        forward = golden.learn(x, int(y))
        assert await driver.run(x, int(y)) == forward.prediction, f"sample {s}: prediction"
        assert (await driver.outputs()).tolist() == forward.output.tolist(), f"sample {s}"
    counters, expected = await driver.counters(), golden.counters.as_dict()
    for phase in PHASES:
        for kind in KINDS:
            if kind != "cycles":  # measured by the RTL, estimated by the golden model
                assert counters[phase][kind] == expected[phase][kind], f"{phase}.{kind}"
    for k, w in enumerate(await driver.all_weights()):
        np.testing.assert_array_equal(w, golden.weights[k], err_msg=f"layer {k}")
    assert await driver.register("lfsr") == golden.lfsr_state
