"""ECP5 resources of a core in seconds, from the spec alone: no synthesis.

Memories and multipliers are counted structurally from the elaborated core (its memory list
and the units the spec implies): a memory takes DP16KD blocks in the cheapest of their
aspect ratios or LUT-RAM (16 × 4 bits per cell), whichever Yosys's memory mapper prices
lower (`BRAM_COST` a block, `LUTRAM_COST` a cell, its ECP5 library's costs). Only
LFP's wide products take DSPs (`dsp_tiles` of 18 × 18 each): per lane and layer A·q, |w|·(A·q)
and w·q, and once the reward's A·Σ; the MAC and DRTP multiply by few-bit operands as shifted
adds in LUTs. LUTs and flip-flops follow the datapath width: the performance counters at a
fixed cost per bit and every other bit of the lane datapaths at a rate calibrated once on the
synthesised digits cores (`CALIBRATION`), LFP's learning bits at an extra rate of their own,
so the estimate's error on other specs measures the model; a banked weight memory's
registers (`bank_register_bits`) are counted as they are.
"""

import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from quant.counters import KINDS, PHASES
from quant.spec import CoreSpec
from rtl.core import MemoryInfo, memories
from rtl.geometry import BANK_WORDS, Geometry

BRAM_COST, LUTRAM_COST = 128, 4  # Yosys's techlibs/lattice brams_16kd.txt and lutrams.txt
DP16KD_SHAPES = ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384))
COUNTER_BITS = 48
FF_PER_COUNTER_BIT = 1.0  # the count register
LUT_PER_COUNTER_BIT = 1.5  # the incrementer's carry chain and the bus read-out multiplexer

DSP_WIDTH = 18  # MULT18X18D operand bits

# ECP5 place-and-route results (Yosys 0.70 + nextpnr 0.11) of the shipped digits spec's
# learning core, its inference-only twin and its LFP twin (`calibration_specs`): what the
# per-bit rates are solved from.
CALIBRATION = {
    "drtp": {"luts": 14630, "flip_flops": 5557},
    "none": {"luts": 10122, "flip_flops": 4040},
    "lfp": {"luts": 30601, "flip_flops": 11549},
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


def in_block_ram(memory: MemoryInfo) -> bool:
    """Whether Yosys maps `memory` to block RAM: where its blocks cost less than its cells."""
    return BRAM_COST * brams(memory) < LUTRAM_COST * lutram(memory)


def dsp_tiles(a_bits: int, b_bits: int) -> int:
    """MULT18X18D blocks of an `a_bits` × `b_bits` product, split into 18-bit tiles."""
    return math.ceil(a_bits / DSP_WIDTH) * math.ceil(b_bits / DSP_WIDTH)


def dsps(spec: CoreSpec) -> int:
    if spec.rule != "lfp":
        return 0
    geo = Geometry(spec)
    w, q = spec.weight_bits, geo.factor_bits
    per_layer = (
        dsp_tiles(a.activity_bits, q) + dsp_tiles(w, a.activity_bits + q) + dsp_tiles(w, q)
        for a in geo.layers
    )
    reward = dsp_tiles(max(a.activity_bits for a in geo.layers), spec.acc_bits)
    return spec.lanes * sum(per_layer) + reward


def counter_bits(spec: CoreSpec) -> int:
    phases = len(PHASES) if spec.rule != "none" else 1
    return phases * len(KINDS) * COUNTER_BITS


def learning_bits(spec: CoreSpec) -> int:
    """The update lanes' weight, factor and activity operands."""
    if spec.rule == "none":
        return 0
    geo = Geometry(spec)
    return sum(
        spec.lanes * (spec.weight_bits + geo.factor_bits + layer.activity_bits)
        for layer in geo.layers
    )


def bank_register_bits(spec: CoreSpec) -> int:
    """Flip-flops of the banked weight memories: the registered read address, each bank's
    registered word, and the bank read, registered twice; the registered write's in-bank
    address and word (the banks' copies are one register after synthesis) and each bank's
    lane enables. Counted exactly, as the calibration cores have no banks."""
    word = spec.lanes * spec.weight_bits
    return sum(
        (layer.words - 1).bit_length()
        + len(layer.banks) * word
        + 2 * (len(layer.banks) - 1).bit_length()
        + (BANK_WORDS - 1).bit_length()
        + word
        + len(layer.banks) * spec.lanes
        for layer in Geometry(spec).layers
        if len(layer.banks) > 1
    )


def datapath_bits(spec: CoreSpec, mems: tuple[MemoryInfo, ...]) -> int:
    """Bits of the lane datapaths: sums and neuron state per layer, and the learning bits."""
    geo = Geometry(spec)
    state = {m.name: m.width for m in mems if m.name.startswith("state")}
    bits = sum(
        spec.lanes * layer.sum_bits + state[f"state{k}"] for k, layer in enumerate(geo.layers)
    )
    return bits + learning_bits(spec)


def calibration_specs() -> dict[str, CoreSpec]:
    """The cores `CALIBRATION` was measured on: digits with DRTP, without learning, with LFP."""
    from quant.spec import load_spec

    base = load_spec(CALIBRATION_SPEC)
    lfp = replace(base, rule="lfp", lr_shifts=(8,) * len(base.lr_shifts))
    return {"drtp": base, "none": base.inference_only(), "lfp": lfp}


@cache
def _rates() -> dict[str, tuple[float, float, float]]:
    """(per datapath bit, constant, extra per LFP learning bit) for LUTs and flip-flops:
    the first two solved from the DRTP and inference-only cores, the third from the LFP core,
    each after the counters' fixed cost is taken off."""
    points = calibration_specs()
    rates = {}
    for resource, per_counter_bit in (
        ("luts", LUT_PER_COUNTER_BIT),
        ("flip_flops", FF_PER_COUNTER_BIT),
    ):
        x, y = {}, {}
        for rule, spec in points.items():
            x[rule] = datapath_bits(spec, memories(spec))
            y[rule] = CALIBRATION[rule][resource] - per_counter_bit * counter_bits(spec)
        slope = (y["drtp"] - y["none"]) / (x["drtp"] - x["none"])
        constant = y["drtp"] - slope * x["drtp"]
        lfp = (y["lfp"] - slope * x["lfp"] - constant) / learning_bits(points["lfp"])
        rates[resource] = (slope, constant, lfp)
    return rates


def estimate(spec: CoreSpec, mems: tuple[MemoryInfo, ...] | None = None) -> ResourceEstimate:
    """The estimate for `spec`; `mems` is its memory list when already elaborated."""
    mems = mems if mems is not None else memories(spec)
    bits = datapath_bits(spec, mems)
    lfp_bits = learning_bits(spec) if spec.rule == "lfp" else 0
    rates = _rates()

    def scaled(resource: str, per_counter_bit: float) -> int:
        slope, constant, lfp = rates[resource]
        fixed = per_counter_bit * counter_bits(spec) + constant
        return round(fixed + slope * bits + lfp * lfp_bits)

    return ResourceEstimate(
        luts=scaled("luts", LUT_PER_COUNTER_BIT),
        flip_flops=scaled("flip_flops", FF_PER_COUNTER_BIT) + bank_register_bits(spec),
        dsps=dsps(spec),
        brams=sum(brams(m) for m in mems if in_block_ram(m)),
        lutram=sum(lutram(m) for m in mems if not in_block_ram(m)),
    )
