"""The core's host-visible register and memory map, derived from a `CoreSpec`.

One source: the RTL decodes these addresses, the firmware driver and its C header are
generated from them, and the manifest lists them. Addresses are in 32-bit bus words
(Wishbone B4, word-addressed). Every region is a power of two in size and aligned to it,
so decoding compares high address bits only.
"""

import hashlib
from dataclasses import dataclass
from functools import cached_property

from quant.counters import KINDS, PHASES
from quant.spec import CoreSpec, spec_to_toml
from rtl.conv import ConvGeometry
from rtl.geometry import Geometry, address_bits

IDENT = 0x504C4352  # "PLCR"

# Control/status registers, word offsets from 0 (region "csr").
REGISTERS: dict[str, tuple[int, str, str]] = {
    "ident": (0, "r", "constant 0x504C4352 ('PLCR')"),
    "ctrl": (1, "w", "bit 0 start, bit 1 learn (with start), bit 2 clear counters"),
    "status": (2, "r", "bit 0 busy, bit 1 done (set when a sample finishes, cleared by start)"),
    "label": (3, "rw", "class label used by the next learning step"),
    "prediction": (4, "r", "predicted class of the last sample"),
    "lfsr": (5, "rw", "rounding LFSR state (write only while idle; 0 is refused)"),
    "spec_hash": (6, "r", "first 32 bits of the SHA-256 of the spec's TOML"),
}
# Bit positions of the fields of `ctrl` (write) and `status` (read).
CTRL_BITS = {"start": 0, "learn": 1, "clear": 2}
STATUS_BITS = {"busy": 0, "done": 1}
COUNTER_BASE = 0x40  # phase-major, kind-minor, two words (low, high) per 48-bit counter
COUNTER_BITS = 48


def spec_hash(spec: CoreSpec) -> int:
    """First 32 bits of the SHA-256 of the spec's TOML: which spec a core was built from."""
    return int.from_bytes(hashlib.sha256(spec_to_toml(spec).encode()).digest()[:4], "big")


@dataclass(frozen=True)
class Region:
    """A block of bus words: `base` and `size` are powers of two, `base` aligned."""

    name: str
    base: int
    size: int
    access: str
    doc: str

    @property
    def size_bits(self) -> int:
        return (self.size - 1).bit_length()


def counter_address(phase: str, kind: str) -> int:
    """Low word of counter (phase, kind); the high word follows."""
    return COUNTER_BASE + 2 * (PHASES.index(phase) * len(KINDS) + KINDS.index(kind))


@dataclass(frozen=True)
class MemoryMap:
    """Regions of one core: registers, counters, inputs, outputs and each weight layer."""

    spec: CoreSpec

    @property
    def lane_bits(self) -> int:
        return (Geometry(self.spec).lane_stride - 1).bit_length()

    def block_bits(self, layer: int) -> int:
        return address_bits(Geometry(self.spec).layers[layer].blocks)

    @cached_property
    def regions(self) -> tuple[Region, ...]:
        spec = self.spec
        counters = 2 * len(PHASES) * len(KINDS)
        wanted = [
            ("csr", 1 << (COUNTER_BASE + counters - 1).bit_length(), "rw", "registers, counters"),
            ("inputs", spec.inputs, "w", "input codes x_i, one per word"),
            (
                "outputs",
                spec.blocks(spec.classes) << self.lane_bits,
                "r",
                "output spike counts (LIF) or activations, word (c // lanes) · stride + c % lanes",
            ),
        ]
        for k, layer in enumerate(Geometry(spec).layers):
            size = layer.n_in << (self.block_bits(k) + self.lane_bits)
            wanted.append((f"weights{k}", size, "rw", f"W_{k + 1}[i, j] (see weight_address)"))
        if spec.conv:
            size = ConvGeometry.of(spec).kernel_words << self.lane_bits
            wanted.append(
                ("kernels", size, "w", "front-end taps K[o, c, dy, dx] (see kernel_address)")
            )
        regions, cursor = [], 0
        for name, size, access, doc in wanted:
            size = 1 << (size - 1).bit_length()
            base = -(-cursor // size) * size
            regions.append(Region(name, base, size, access, doc))
            cursor = base + size
        return tuple(regions)

    def region(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    @property
    def addr_bits(self) -> int:
        return max(1, (self.regions[-1].base + self.regions[-1].size - 1).bit_length())

    def weight_address(self, layer: int, i: int, j: int) -> int:
        """Bus address of `W_{layer+1}[i, j]`: row i, word j // lanes, lane j % lanes."""
        lanes = self.spec.lanes
        offset = ((i << self.block_bits(layer)) | (j // lanes)) << self.lane_bits | (j % lanes)
        return self.region(f"weights{layer}").base + offset

    def kernel_address(self, o: int, c: int, dy: int, dx: int) -> int:
        """Bus address of the front end's tap `K[o, c, dy, dx]`: its kernel word (§5), lane
        o % lanes. The core only reads the kernels: the host writes them, and may not read
        them back."""
        lanes = self.spec.lanes
        word = ConvGeometry.of(self.spec).kernel_address(c, dy, dx, o // lanes)
        return self.region("kernels").base + (word << self.lane_bits | o % lanes)

    def output_address(self, c: int) -> int:
        lanes = self.spec.lanes
        return self.region("outputs").base + ((c // lanes) << self.lane_bits) + c % lanes

    def input_address(self, i: int) -> int:
        return self.region("inputs").base + i
