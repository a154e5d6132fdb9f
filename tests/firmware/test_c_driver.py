"""The C driver, compiled with gcc, against a simulated bus: the same bus cycles as the
Python driver, the same results as the golden model, no libc, and its errors."""

import asyncio
import ctypes
import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from firmware.c_driver import write_c_driver
from firmware.driver import CoreDriver
from quant.counters import KINDS, PHASES
from quant.spec import load_spec
from rtl.memory_map import MemoryMap
from sim.chip.params import initial_kernels, initial_weights
from tests.rtl.random_specs import random_spec

from .virtual_core import VirtualCore

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIM = Path(__file__).parent / "c"
GCC = shutil.which("gcc")
pytestmark = pytest.mark.skipif(GCC is None, reason="gcc not installed")
READ = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32)
WRITE = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32)
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


class CDriver:
    """The compiled driver bound to a simulated core's read and write."""

    def __init__(self, spec, build: Path, core: VirtualCore) -> None:
        source = write_c_driver(spec, build / "src")
        library = build / "libplasticore.so"
        command = [GCC, *WARNINGS, "-shared", "-fPIC", f"-I{source}", f"-I{SHIM}"]
        command += ["-include", "bus_shim.h", "-o", str(library)]
        subprocess.run(
            [*command, str(source / "plasticore.c"), str(SHIM / "bus_shim.c")], check=True
        )
        self.lib = ctypes.CDLL(str(library))
        self.spec = spec
        self.bind(core)
        self.lib.plc_counter.restype = ctypes.c_uint64
        self.lib.plc_output.restype = ctypes.c_int32
        self.lib.plc_weight_address.restype = ctypes.c_uint32
        if spec.conv:
            self.lib.plc_kernel_address.restype = ctypes.c_uint32

    def bind(self, core: VirtualCore) -> None:
        # The callbacks stay referenced for as long as the library may call them.
        self.callbacks = (READ(core.read_word), WRITE(core.write_word))
        self.lib.plc_test_bind(*self.callbacks)

    def load_kernels(self, kernels: np.ndarray) -> int:
        flat = (ctypes.c_int32 * kernels.size)(*np.asarray(kernels).ravel().tolist())
        return self.lib.plc_load_kernels(flat)

    def load(self, layer: int, w: np.ndarray) -> int:
        flat = (ctypes.c_int32 * w.size)(*np.asarray(w).ravel().tolist())
        return self.lib.plc_load_layer(layer, flat)

    def read(self) -> list[np.ndarray]:
        out = []
        for k, (n_in, n_out) in enumerate(itertools.pairwise(self.spec.layer_sizes)):
            buffer = (ctypes.c_int32 * (n_in * n_out))()
            assert self.lib.plc_read_layer(k, buffer) == 0
            out.append(np.array(buffer[:], dtype=np.int64).reshape(n_in, n_out))
        return out

    def run(self, codes, label: int | None, poll_limit: int = 1000) -> int:
        array = (ctypes.c_uint32 * len(codes))(*[int(c) for c in codes])
        return self.lib.plc_run(array, -1 if label is None else int(label), poll_limit)

    def counters(self) -> dict[str, dict[str, int]]:
        return {
            phase: {kind: self.lib.plc_counter(p, n) for n, kind in enumerate(KINDS)}
            for p, phase in enumerate(PHASES)
        }


def _session(spec, seed: int = 0):
    """Start weights, other weights to load, samples (codes, label or None), and the front
    end's kernels (None without one)."""
    rng = np.random.default_rng(seed)
    kernels = initial_kernels(spec, seed) if spec.conv else None
    start = initial_weights(spec, "random", seed=seed)
    loaded = initial_weights(spec, "random", seed=seed + 1)
    codes = rng.integers(0, 1 << spec.input_bits, (4, spec.inputs))
    labels = [int(c) for c in rng.integers(0, spec.classes, 3)] + [None]
    if spec.rule == "none":
        labels = [None] * 4
    return start, loaded, list(zip(codes, labels, strict=True)), kernels


async def _python_session(driver: CoreDriver, loaded, samples, kernels) -> dict:
    await driver.identify()
    await driver.load_weights(loaded)
    if kernels is not None:
        await driver.load_kernels(kernels)
    await driver.clear_counters()
    results = []
    for codes, label in samples:
        results.append((await driver.run(codes, label), (await driver.outputs()).tolist()))
    return {
        "runs": results,
        "counters": await driver.counters(),
        "weights": await driver.all_weights(),
    }


def _c_session(driver: CDriver, loaded, samples, kernels) -> dict:
    assert driver.lib.plc_identify() == 0
    for k, w in enumerate(loaded):
        assert driver.load(k, w) == 0
    if kernels is not None:
        assert driver.load_kernels(kernels) == 0
    driver.lib.plc_clear_counters()
    results = []
    for codes, label in samples:
        prediction = driver.run(codes, label)
        outputs = [driver.lib.plc_output(c) for c in range(driver.spec.classes)]
        results.append((prediction, outputs))
    return {"runs": results, "counters": driver.counters(), "weights": driver.read()}


@pytest.mark.parametrize("case", ["digits", "digits_conv", "random7", "random13"])
def test_c_driver_matches_python_driver_and_golden(tmp_path: Path, case: str) -> None:
    """Same bus cycles in the same order, same predictions, outputs, counters and weights;
    and those equal the golden model learning the same samples from the loaded weights
    (and kernels, for the core with the front end)."""
    from sim.chip.golden import GoldenCore

    if case.startswith("random"):
        spec = random_spec(int(case[6:]))
    else:
        spec = load_spec(CONFIGS / f"{case}.toml")
    start, loaded, samples, kernels = _session(spec)
    py_core, c_core = VirtualCore(spec, start), VirtualCore(spec, start)
    py = asyncio.run(_python_session(CoreDriver(py_core, spec), loaded, samples, kernels))
    c = _c_session(CDriver(spec, tmp_path, c_core), loaded, samples, kernels)
    assert c_core.log == py_core.log
    assert c["runs"] == py["runs"]
    assert c["counters"] == py["counters"]
    for a, b in zip(c["weights"], py["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    golden = GoldenCore(spec, loaded, kernels=kernels)
    for (codes, label), (prediction, outputs) in zip(samples, c["runs"], strict=True):
        forward = golden.infer(codes) if label is None else golden.learn(codes, label)
        assert prediction == forward.prediction
        assert outputs == forward.output.tolist()
    for a, b in zip(c["weights"], golden.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_c_weight_addresses_equal_memory_map(tmp_path: Path) -> None:
    spec = random_spec(5)
    driver = CDriver(spec, tmp_path, VirtualCore(spec, initial_weights(spec, "zero")))
    mmap = MemoryMap(spec)
    for k, (n_in, n_out) in enumerate(itertools.pairwise(spec.layer_sizes)):
        for i, j in itertools.product(range(n_in), range(n_out)):
            assert driver.lib.plc_weight_address(k, i, j) == mmap.weight_address(k, i, j)


def test_c_kernel_addresses_equal_memory_map_and_taps_are_range_checked(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "digits_conv.toml")
    core = VirtualCore(spec, initial_weights(spec, "zero"))
    driver = CDriver(spec, tmp_path, core)
    mmap = MemoryMap(spec)
    for tap in np.ndindex(core.golden.kernels.shape):
        assert driver.lib.plc_kernel_address(*tap) == mmap.kernel_address(*tap)
    kernels = initial_kernels(spec, 1)
    kernels[7, 0, 2, 2] = 1 << (spec.kernel_bits - 1)
    assert driver.load_kernels(kernels) == -3
    assert core.log == [], "a refused call touched the bus"


def test_c_driver_errors(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "digits.toml")
    weights = initial_weights(spec, "zero")
    core = VirtualCore(spec, weights, latency=5)
    driver = CDriver(spec, tmp_path, core)
    too_big = weights[0].copy()
    too_big[3, 4] = spec.weight.max_int + 1
    assert driver.load(0, too_big) == -3
    assert driver.lib.plc_load_layer(len(weights), None) == -3
    codes = np.zeros(spec.inputs, dtype=np.int64)
    codes[-1] = 1 << spec.input_bits
    assert driver.run(codes, None) == -3
    assert driver.run(np.zeros(spec.inputs), spec.classes) == -3
    assert core.log == [], "a refused call touched the bus"
    assert driver.run(np.zeros(spec.inputs), None, poll_limit=5) == -4
    other = VirtualCore(random_spec(3), initial_weights(random_spec(3), "zero"))
    driver.bind(other)
    assert driver.lib.plc_identify() == -2


def test_c_driver_is_freestanding(tmp_path: Path) -> None:
    """Memory-mapped build with no libc: the object file needs no symbol from outside."""
    source = write_c_driver(load_spec(CONFIGS / "digits.toml"), tmp_path)
    obj = tmp_path / "plasticore.o"
    subprocess.run(
        [
            GCC,
            *WARNINGS,
            "-ffreestanding",
            "-nostdlib",
            "-O2",
            "-DPLC_BASE=0x40000000",
            "-c",
            str(source / "plasticore.c"),
            "-o",
            str(obj),
        ],
        check=True,
    )
    undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True)
    assert undefined.stdout.strip() == ""
