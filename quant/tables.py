"""Constant tables a `CoreSpec` implies: ROM contents shared by the golden model and the RTL.

Each function here is the one definition of a table (contract §5–§7); the golden model
reads it at run time, the RTL generator bakes it into ROMs or seed registers.
"""

import math

import numpy as np

from quant.lfsr import LFSRSpec, LFSRStream
from quant.spec import CoreSpec

GOLDEN_GAMMA = 0x9E3779B9  # spreads the per-(layer, label) projection seeds over the state space


def rounding_lfsr(spec: CoreSpec) -> LFSRSpec:
    """The LFSR whose successive states drive stochastic rounding (contract §4)."""
    return LFSRSpec(spec.lfsr_width, spec.seed)


def projection_seed(spec: CoreSpec, layer: int, label: int) -> int:
    """Seed of the LFSR that regenerates DRTP row `label` of hidden layer `layer`."""
    period = (1 << spec.lfsr_width) - 1
    index = layer * spec.classes + label
    return 1 + (spec.projection_seed - 1 + index * GOLDEN_GAMMA) % period


def projection_row(spec: CoreSpec, layer: int, label: int) -> np.ndarray:
    """DRTP's fixed random row `B_k[label]` in {−1, +1} (int64), one entry per neuron:
    bit 0 of the successive states of the row's LFSR, 1 ↦ +1, 0 ↦ −1."""
    stream = LFSRStream(LFSRSpec(spec.lfsr_width, projection_seed(spec, layer, label)))
    return 2 * (stream.take(spec.hidden[layer]) & 1) - 1


def projection_rom(spec: CoreSpec, layer: int) -> np.ndarray:
    """All rows of hidden layer `layer`, `[classes, hidden[layer]]`: the ROM contents."""
    return np.stack([projection_row(spec, layer, c) for c in range(spec.classes)])


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def reward_tables(spec: CoreSpec) -> tuple[np.ndarray, np.ndarray]:
    """LFP's output reward by spike count n = 0..T (LFP paper Eq. A.4 summed over the
    window), for the true class and for the others, in the spec's reward format:

        true:  T · (1 − σ(n − ⌊T/2⌋))        other:  −n · (1 − σ(T − n − ⌊T/2⌋))

    Rounded to nearest once, at design time: the chip only reads the two tables.
    """
    steps, half = spec.time_steps, spec.time_steps // 2
    true = [steps * (1 - _sigmoid(n - half)) for n in range(steps + 1)]
    other = [-n * (1 - _sigmoid(steps - n - half)) for n in range(steps + 1)]
    fmt = spec.reward
    return fmt.quantize(np.array(true)), fmt.quantize(np.array(other))


def recip_table(bits: int) -> np.ndarray:
    """`round(2^(2k+1) / m)` for the mantissas m = 2^k … 2^(k+1) − 1 (k = `bits`), in
    integers: the per-neuron reciprocal's lookup table (contract §7)."""
    m = np.arange(1 << bits, 1 << (bits + 1), dtype=np.int64)
    return ((1 << (2 * bits + 2)) + m) // (2 * m)
