"""The cocotb bench of `plasticore verify`: the RTL core against the golden model.

Runs inside the simulator. It reads a job (`PLASTICORE_JOB`, written by
`plasticore.verify`), drives every sample through the bus, runs the golden model on the
same sample, and compares the prediction, every output, every counter (the RTL's `cycles`
is measured, the golden model's an estimate: reported, not compared), and after learning
every weight and the rounding LFSR. The report (`PLASTICORE_REPORT`) names the first
difference by sample, layer, neuron and field.
"""

import os
import time

import cocotb
import numpy as np

from firmware.driver import CoreDriver, to_signed
from quant.atomic import atomic_write_json
from quant.counters import KINDS, PHASES
from quant.errors import BusError
from quant.spec import CoreSpec, spec_from_toml
from rtl.cocotb_bus import CocotbWishbone
from sim.chip.golden import GoldenCore


async def _driver(dut: object, spec: CoreSpec) -> CoreDriver:
    """The driver on the simulated core's bus, out of reset and identified."""
    bus = CocotbWishbone(dut)
    await bus.start()
    driver = CoreDriver(bus, spec)
    await driver.identify()
    return driver


COMPARED_KINDS = tuple(kind for kind in KINDS if kind != "cycles")


def _diff_counters(sample: int, rtl: dict, golden: dict) -> list[str]:
    return [
        f"sample {sample}: counter {phase}.{kind}: rtl {rtl[phase][kind]}, "
        f"golden {golden[phase][kind]}"
        for phase in PHASES
        for kind in COMPARED_KINDS
        if rtl[phase][kind] != golden[phase][kind]
    ]


@cocotb.test()
async def verify_against_golden(dut: object) -> None:
    job = np.load(os.environ["PLASTICORE_JOB"])
    spec = spec_from_toml(str(job["spec"]))
    weights = [job[f"w{k}"] for k in range(len(spec.hidden) + 1)]
    inputs, labels = job["inputs"], job["labels"]
    learn, check_every = bool(job["learn"]), int(job["check_every"])
    kernels = job["kernels"] if spec.conv else None
    golden = GoldenCore(spec, weights, kernels=kernels)
    host = await _driver(dut, spec)
    if spec.conv:
        await host.load_kernels(kernels)
    mismatches: list[str] = []
    coverage = {
        "labels": set(),
        "saturated_weights": 0,
        "silent_samples": 0,
        "learn_steps": 0,
        "gated_steps": 0,
    }
    began = time.perf_counter()
    for s, (x, y) in enumerate(zip(inputs, labels, strict=True)):
        label = int(y) if learn else None
        before = [w.copy() for w in golden.weights]
        forward = golden.learn(x, label) if learn else golden.infer(x)
        prediction = await host.run(x, label)
        if prediction != forward.prediction:
            mismatches.append(
                f"sample {s}: prediction: rtl {prediction}, golden {forward.prediction}"
            )
        outputs = await host.outputs()
        for c, (r, g) in enumerate(zip(outputs.tolist(), forward.output.tolist(), strict=True)):
            if r != g:
                mismatches.append(
                    f"sample {s}: layer {len(spec.hidden)} neuron {c}: output rtl {r}, golden {g}"
                )
        counters = await host.counters()
        mismatches += _diff_counters(s, counters, golden.counters.as_dict())
        if learn:
            coverage["learn_steps" if forward.learned else "gated_steps"] += 1
            coverage["labels"].add(int(y))
            for w_old, w_new in zip(before, golden.weights, strict=True):
                moved = w_old != w_new
                at_edge = (w_new == spec.weight.max_int) | (w_new == spec.weight.min_int)
                coverage["saturated_weights"] += int((moved & at_edge).sum())
        if forward.output.sum() == 0:
            coverage["silent_samples"] += 1
        last_sample = s == len(inputs) - 1
        if learn and ((s + 1) % check_every == 0 or last_sample):
            for k, expected in enumerate(golden.weights):
                got = await host.read_weights(k)
                diff = np.argwhere(got != expected)
                for i, j in diff[:5]:
                    mismatches.append(
                        f"sample {s}: layer {k} weight [{i}, {j}]: rtl {got[i, j]}, "
                        f"golden {expected[i, j]}"
                    )
            lfsr = await host.register("lfsr")
            if lfsr != golden.lfsr_state:
                mismatches.append(f"sample {s}: lfsr: rtl {lfsr}, golden {golden.lfsr_state}")
        if mismatches:
            break
    seconds = time.perf_counter() - began
    counters = await host.counters()
    report = {
        "samples": s + 1,
        "mismatches": mismatches[:20],
        "rtl_counters": counters,
        "golden_counters": golden.counters.as_dict(),
        "seconds": seconds,
        "coverage": {**coverage, "labels": sorted(coverage["labels"])},
    }
    atomic_write_json(os.environ["PLASTICORE_REPORT"], report)
    assert not mismatches, mismatches[0]


@cocotb.test()
async def bus_registers(dut: object) -> None:
    """Every register and memory region answers as the memory map documents."""
    job = np.load(os.environ["PLASTICORE_JOB"])
    spec = spec_from_toml(str(job["spec"]))
    host = await _driver(dut, spec)
    bus = host.bus
    assert await host.register("status") == 0
    for label in (spec.classes - 1, 0):
        await host.set_register("label", label)
        assert await host.register("label") == label
    for value, ok in ((0, False), (1 << spec.lfsr_width, False), (5, True)):
        try:
            await host.set_register("lfsr", value)
            refused = False
        except BusError:
            refused = True
        assert refused != ok, f"lfsr write {value}"
    assert await host.register("lfsr") == 5
    w = spec.weight
    last_layer = len(spec.hidden)
    n_in, n_out = spec.layer_sizes[last_layer], spec.layer_sizes[-1]
    for i, j, value in ((0, 0, w.max_int), (n_in - 1, n_out - 1, w.min_int), (0, n_out - 1, -1)):
        address = host.map.weight_address(last_layer, i, j)
        await bus.write(address, value & 0xFFFFFFFF)
        assert to_signed(await bus.read(address)) == value
    if n_out % spec.lanes:  # a padding lane reads zero and ignores writes
        padding = host.map.weight_address(last_layer, 0, n_out - 1) + 1
        await bus.write(padding, 1)
        assert await bus.read(padding) == 0
    await bus.write(host.map.input_address(spec.inputs - 1), 1)
    if spec.conv:  # kernel taps: written by the host, never read back
        await host.load_kernels(job["kernels"])
        try:
            await bus.read(host.map.kernel_address(0, 0, 0, 0))
            raise AssertionError("a kernel read was answered")
        except BusError:
            pass
    counters = await host.counters()
    assert all(v == 0 for phase in counters.values() for v in phase.values())
    await host.set_register("ctrl", 1)  # start an inference, then poke while busy
    assert await host.register("status") & 1
    try:
        await bus.write(host.map.input_address(0), 1)
        raise AssertionError("input write while busy was accepted")
    except BusError:
        pass
    while not await host.register("status") & 2:
        pass
    counters = await host.counters()
    assert counters["inference"]["cycles"] > 0 and counters["learning"]["cycles"] == 0
    await host.clear_counters()
    counters = await host.counters()
    assert all(v == 0 for phase in counters.values() for v in phase.values())
