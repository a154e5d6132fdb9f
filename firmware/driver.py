"""Host driver of a learning core: load weights, stream samples, learn, read results back.

The driver speaks nothing but 32-bit reads and writes at word addresses (the `Bus`
protocol), so one driver runs against the core in cocotb co-simulation
(`rtl.cocotb_bus.CocotbWishbone`), over the FPGA's UART bridge (`firmware.serial_bus`),
or over any other transport. Every address and bit comes from `rtl.memory_map`, the one
source the RTL decodes, the C header is generated from and the manifest lists.

The methods are coroutines because a simulator can only be driven from one; a host on a
serial link runs them with `asyncio.run`.
"""

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from quant.counters import KINDS, PHASES
from quant.errors import BusError, ConfigError, PlasticoreError
from quant.spec import CoreSpec
from rtl.memory_map import (
    COUNTER_BITS,
    CTRL_BITS,
    IDENT,
    REGISTERS,
    STATUS_BITS,
    MemoryMap,
    counter_address,
    spec_hash,
)

WORD_MASK = 0xFFFFFFFF


class Bus(Protocol):
    """A transport of 32-bit word reads and writes; a refused cycle raises `BusError`.

    A transport that sees the core's `done` line (an interrupt) may also offer
    `async wait_done()`; the driver then waits on it instead of polling `status`.
    """

    async def read(self, address: int) -> int: ...

    async def write(self, address: int, value: int) -> None: ...


class WrongCore(PlasticoreError):
    """The core on the bus is not a plasticore core, or was built from another spec."""


def to_signed(value: int, bits: int = 32) -> int:
    """A bus word read as a two's-complement number (outputs and weights are signed)."""
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


class CoreDriver:
    """Commands of one core, built from the spec the core was generated from."""

    def __init__(self, bus: Bus, spec: CoreSpec, poll_limit: int = 1_000_000) -> None:
        self.bus, self.spec, self.map = bus, spec, MemoryMap(spec)
        self.poll_limit = poll_limit

    async def register(self, name: str) -> int:
        return await self.bus.read(REGISTERS[name][0])

    async def set_register(self, name: str, value: int) -> None:
        await self.bus.write(REGISTERS[name][0], value)

    async def identify(self) -> None:
        """Check that the core answers with the identifier and this spec's hash."""
        ident = await self.register("ident")
        if ident != IDENT:
            raise WrongCore(f"ident register reads 0x{ident:08x}, not 0x{IDENT:08x}: no core")
        found, expected = await self.register("spec_hash"), spec_hash(self.spec)
        if found != expected:
            raise WrongCore(
                f"core was built from another spec (hash 0x{found:08x}, spec "
                f"{self.spec.name!r} has 0x{expected:08x})"
            )

    def _check_weights(self, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        sizes, fmt = self.spec.layer_sizes, self.spec.weight
        if len(weights) != len(sizes) - 1:
            raise ConfigError(f"weights: {len(weights)} layers given, spec has {len(sizes) - 1}")
        checked = []
        for k, w in enumerate(weights):
            w = np.asarray(w)
            if w.shape != (sizes[k], sizes[k + 1]):
                raise ConfigError(
                    f"weights layer {k}: shape {w.shape}, spec needs {sizes[k : k + 2]}"
                )
            if w.min() < fmt.min_int or w.max() > fmt.max_int:
                raise ConfigError(
                    f"weights layer {k}: values outside [{fmt.min_int}, {fmt.max_int}]"
                )
            checked.append(w.astype(np.int64))
        return checked

    async def load_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Write every weight of every layer (`weights[k]` is `[n_in, n_out]`)."""
        for k, w in enumerate(self._check_weights(weights)):
            for (i, j), value in np.ndenumerate(w):
                await self.bus.write(self.map.weight_address(k, i, j), int(value) & WORD_MASK)

    async def load_kernels(self, kernels: np.ndarray) -> None:
        """Write every tap of the front end's fixed kernels (`[C_out, C_in, k, k]`)."""
        for (o, c, dy, dx), value in np.ndenumerate(self.spec.kernel_array(kernels)):
            await self.bus.write(self.map.kernel_address(o, c, dy, dx), int(value) & WORD_MASK)

    async def read_weights(self, layer: int) -> np.ndarray:
        n_in, n_out = self.spec.layer_sizes[layer], self.spec.layer_sizes[layer + 1]
        out = np.empty((n_in, n_out), dtype=np.int64)
        for i in range(n_in):
            for j in range(n_out):
                out[i, j] = to_signed(await self.bus.read(self.map.weight_address(layer, i, j)))
        return out

    async def all_weights(self) -> list[np.ndarray]:
        return [await self.read_weights(k) for k in range(len(self.spec.layer_sizes) - 1)]

    async def run(self, codes: Sequence[int] | np.ndarray, label: int | None = None) -> int:
        """One sample: inference, then a learning step on `label` when given; the prediction."""
        codes = np.asarray(codes)
        spec = self.spec
        if codes.shape != (spec.inputs,):
            raise ConfigError(f"codes: shape {codes.shape}, the core takes ({spec.inputs},)")
        if codes.min() < 0 or codes.max() >= 1 << spec.input_bits:
            raise ConfigError(f"codes: values outside [0, {(1 << spec.input_bits) - 1}]")
        if label is not None and not 0 <= label < spec.classes:
            raise ConfigError(f"label {label} outside [0, {spec.classes - 1}]")
        for i, code in enumerate(codes):
            await self.bus.write(self.map.input_address(i), int(code))
        ctrl = 1 << CTRL_BITS["start"]
        if label is not None:
            await self.set_register("label", int(label))
            ctrl |= 1 << CTRL_BITS["learn"]
        await self.set_register("ctrl", ctrl)
        await self.wait()
        return await self.register("prediction")

    async def wait(self) -> None:
        """Until the sample in flight is done: on the `done` line if the bus has it."""
        wait_done = getattr(self.bus, "wait_done", None)
        if wait_done is not None:
            await wait_done()
            return
        for _ in range(self.poll_limit):
            if await self.register("status") >> STATUS_BITS["done"] & 1:
                return
        raise BusError(f"core still busy after {self.poll_limit} status reads")

    async def outputs(self) -> np.ndarray:
        """Output spike counts (LIF) or activations (hard-tanh) of the last sample."""
        return np.array(
            [
                to_signed(await self.bus.read(self.map.output_address(c)))
                for c in range(self.spec.classes)
            ],
            dtype=np.int64,
        )

    async def counters(self) -> dict[str, dict[str, int]]:
        """Every hardware counter, by phase and kind (the golden model's `as_dict` layout)."""
        out: dict[str, dict[str, int]] = {}
        for phase in PHASES:
            out[phase] = {}
            for kind in KINDS:
                low = await self.bus.read(counter_address(phase, kind))
                high = await self.bus.read(counter_address(phase, kind) + 1)
                out[phase][kind] = (high << 32 | low) & ((1 << COUNTER_BITS) - 1)
        return out

    async def clear_counters(self) -> None:
        await self.set_register("ctrl", 1 << CTRL_BITS["clear"])
