"""A transaction-level stand-in for the core: its register and memory map over the golden model.

Drivers are tested against it without a simulator: it answers reads and writes at the
addresses of `rtl.memory_map` and runs a sample in the golden model when `ctrl` starts
one. `status` reads busy for `latency` polls after a start, so the drivers' polling loops
run. Every access is logged, so two drivers can be compared transaction by transaction.
"""

import itertools
from collections.abc import Sequence

import numpy as np

from firmware.driver import to_signed
from quant.counters import KINDS, PHASES
from quant.errors import BusError
from quant.spec import CoreSpec
from rtl.memory_map import (
    CTRL_BITS,
    IDENT,
    REGISTERS,
    STATUS_BITS,
    MemoryMap,
    counter_address,
    spec_hash,
)
from sim.chip.golden import GoldenCore

MASK = 0xFFFFFFFF


class VirtualCore:
    def __init__(self, spec: CoreSpec, weights: Sequence[np.ndarray], latency: int = 3) -> None:
        self.spec, self.map, self.latency = spec, MemoryMap(spec), latency
        kernels = None
        if spec.conv:  # the kernel memory starts empty, as the RTL's does
            k = spec.conv_kernel
            kernels = np.zeros((spec.conv_channels, spec.image_shape[0], k, k), dtype=np.int64)
        self.golden = GoldenCore(spec, weights, kernels=kernels)
        self.log: list[tuple[str, int, int]] = []
        self.inputs = np.zeros(spec.inputs, dtype=np.int64)
        self.outputs = np.zeros(spec.classes, dtype=np.int64)
        self.label = self.prediction = 0
        self.polls_left = 0
        self.done = False
        self.regs = {name: offset for name, (offset, _, _) in REGISTERS.items()}
        self.weight_at = {
            self.map.weight_address(k, i, j): (k, i, j)
            for k, (n_in, n_out) in enumerate(itertools.pairwise(spec.layer_sizes))
            for i in range(n_in)
            for j in range(n_out)
        }
        self.kernel_at = (
            {self.map.kernel_address(*tap): tap for tap in np.ndindex(self.golden.kernels.shape)}
            if spec.conv
            else {}
        )
        self.counter_at = {
            counter_address(phase, kind) + half: (phase, kind, half)
            for phase in PHASES
            for kind in KINDS
            for half in (0, 1)
        }

    def _csr_read(self, address: int) -> int:
        regs = self.regs
        if address == regs["ident"]:
            return IDENT
        if address == regs["spec_hash"]:
            return spec_hash(self.spec)
        if address == regs["status"]:
            if self.polls_left:
                self.polls_left -= 1
                return 1 << STATUS_BITS["busy"]
            return int(self.done) << STATUS_BITS["done"]
        if address == regs["label"]:
            return self.label
        if address == regs["prediction"]:
            return self.prediction
        if address == regs["lfsr"]:
            return self.golden.lfsr_state
        phase, kind, half = self.counter_at[address]
        return self.golden.counters.counts[phase][kind] >> (32 * half) & MASK

    def read_word(self, address: int) -> int:
        if address < self.map.region("csr").size:
            value = self._csr_read(address)
        elif address in self.weight_at:
            k, i, j = self.weight_at[address]
            value = int(self.golden.weights[k][i, j]) & MASK
        elif address in self.kernel_at:
            raise BusError(f"kernel tap at 0x{address:x}: write-only")
        else:
            c = [self.map.output_address(c) for c in range(self.spec.classes)].index(address)
            value = int(self.outputs[c]) & MASK
        self.log.append(("r", address, value))
        return value

    def write_word(self, address: int, value: int) -> None:
        self.log.append(("w", address, value))
        regs = self.regs
        if address == regs["label"]:
            if value >= self.spec.classes:
                raise BusError(f"label {value} refused")
            self.label = value
        elif address == regs["ctrl"]:
            if value >> CTRL_BITS["clear"] & 1:
                self.golden.counters.counts = {p: dict.fromkeys(KINDS, 0) for p in PHASES}
            if value >> CTRL_BITS["start"] & 1:
                learn = value >> CTRL_BITS["learn"] & 1
                run = self.golden.learn if learn else self.golden.infer
                forward = run(self.inputs, self.label) if learn else run(self.inputs)
                self.prediction, self.outputs = forward.prediction, forward.output
                self.polls_left, self.done = self.latency, True
        elif address in self.weight_at:
            k, i, j = self.weight_at[address]
            self.golden.weights[k][i, j] = to_signed(value)
        elif address in self.kernel_at:
            tap = self.kernel_at[address]
            self.golden.kernels[tap] = to_signed(value)
        else:
            self.inputs[address - self.map.input_address(0)] = value

    async def read(self, address: int) -> int:
        return self.read_word(address)

    async def write(self, address: int, value: int) -> None:
        self.write_word(address, value)
