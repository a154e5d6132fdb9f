"""ECP5 resources of a core in seconds, from the spec alone: no synthesis.

Memories and multipliers are counted structurally from the elaborated core (its memory list
and the units the spec implies): a memory deeper than `BRAM_MIN_DEPTH` takes DP16KD blocks in
the cheapest of their aspect ratios, a shallower one LUT-RAM (16 × 4 bits per cell); a
multi-bit MAC layer takes one DSP per lane, learning one per lane and layer (DRTP) or four
(LFP: |w|·A·q, w·q and the reciprocal's product), and each weight layer one for its address.
LUTs and flip-flops follow the datapath width: the performance counters at a fixed cost per
bit and every other bit of the lane datapaths at a rate calibrated once on the synthesised
digits cores (`CALIBRATION`), so the estimate's error on other specs measures the model.
"""

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from quant.counters import KINDS, PHASES
from quant.spec import CoreSpec
from rtl.core import MemoryInfo, memories
from rtl.geometry import Geometry

BRAM_MIN_DEPTH = 128
DP16KD_SHAPES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
COUNTER_BITS = 48
FF_PER_COUNTER_BIT = 1.0  # the count register
LUT_PER_COUNTER_BIT = 1.5  # the incrementer's carry chain and the bus read-out multiplexer

# ECP5 results (LFE5U-25F, Yosys 0.70 + nextpnr 0.11) of the shipped digits spec's learning
# core and its inference-only twin: what the per-bit rates are solved from.
CALIBRATION = {
    "drtp": {"luts": 14729, "flip_flops": 2876},
    "none": {"luts": 10478, "flip_flops": 1998},
}
CALIBRATION_SPEC = Path(__file__).parents[1] / "configs" / "digits.toml"


@dataclass(frozen=True)
class ResourceEstimate:
    luts: int
    flip_flops: int
    dsps: int
    brams: int
    lutram: int  # TRELLIS_DPR16X4 cells


def brams(memory: MemoryInfo) -> int:
    """DP16KD blocks of one memory in its cheapest aspect ratio."""
    return min(
        math.ceil(memory.width / width) * math.ceil(memory.depth / depth)
        for width, depth in DP16KD_SHAPES
    )


def lutram(memory: MemoryInfo) -> int:
    return math.ceil(memory.depth / 16) * math.ceil(memory.width / 4)


def dsps(spec: CoreSpec) -> int:
    geo = Geometry(spec)
    layers = len(geo.layers)
    count = spec.lanes * sum(layer.multi_bit for layer in geo.layers) + layers
    per_lane = {"none": 0, "drtp": 1, "lfp": 4}[spec.rule]
    return count + per_lane * spec.lanes * layers


def counter_bits(spec: CoreSpec) -> int:
    phases = len(PHASES) if spec.rule != "none" else 1
    return phases * len(KINDS) * COUNTER_BITS


def datapath_bits(spec: CoreSpec, mems: tuple[MemoryInfo, ...]) -> int:
    """Bits of the lane datapaths: sums and neuron state per layer, and with learning the
    update lanes' weight, factor and activity operands."""
    geo = Geometry(spec)
    state = {m.name: m.width for m in mems if m.name.startswith("state")}
    bits = sum(
        spec.lanes * layer.sum_bits + state[f"state{k}"] for k, layer in enumerate(geo.layers)
    )
    if spec.rule != "none":
        bits += sum(
            spec.lanes * (spec.weight_bits + geo.factor_bits + layer.activity_bits)
            for layer in geo.layers
        )
    return bits


@cache
def _rates() -> dict[str, tuple[float, float]]:
    """(per datapath bit, constant) for LUTs and flip-flops, solved from the two
    calibration cores after their counters' fixed cost is taken off."""
    from quant.spec import load_spec

    base = load_spec(CALIBRATION_SPEC)
    points = {"drtp": base, "none": base.inference_only()}
    rates = {}
    for resource, per_counter_bit in (
        ("luts", LUT_PER_COUNTER_BIT),
        ("flip_flops", FF_PER_COUNTER_BIT),
    ):
        xs, ys = [], []
        for rule, spec in points.items():
            xs.append(datapath_bits(spec, memories(spec)))
            ys.append(CALIBRATION[rule][resource] - per_counter_bit * counter_bits(spec))
        slope = (ys[0] - ys[1]) / (xs[0] - xs[1])
        rates[resource] = (slope, ys[0] - slope * xs[0])
    return rates


def estimate(spec: CoreSpec, mems: tuple[MemoryInfo, ...] | None = None) -> ResourceEstimate:
    """The estimate for `spec`; `mems` is its memory list when already elaborated."""
    mems = mems if mems is not None else memories(spec)
    bits = datapath_bits(spec, mems)
    rates = _rates()

    def scaled(resource: str, per_counter_bit: float) -> int:
        slope, constant = rates[resource]
        return round(per_counter_bit * counter_bits(spec) + slope * bits + constant)

    return ResourceEstimate(
        luts=scaled("luts", LUT_PER_COUNTER_BIT),
        flip_flops=scaled("flip_flops", FF_PER_COUNTER_BIT),
        dsps=dsps(spec),
        brams=sum(brams(m) for m in mems if m.depth > BRAM_MIN_DEPTH),
        lutram=sum(lutram(m) for m in mems if m.depth <= BRAM_MIN_DEPTH),
    )
