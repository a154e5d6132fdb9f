"""Every width and depth of the core's hardware, derived once from a `CoreSpec`.

The contract (`docs/hardware_contract.md` §1) asks for sums that are exact before their one
saturation: these are the widths that make them exact. Units and the core read their
widths here so a change of spec reaches every port through one place.
"""

from dataclasses import dataclass
from functools import cached_property

from quant.spec import CoreSpec


def signed_bits(low: int, high: int) -> int:
    """Bits of the smallest two's-complement word holding every integer in [low, high]."""
    return max(max(high, 0).bit_length(), max(-low - 1, 0).bit_length()) + 1


# Words of one weight-memory bank. A layer's weights deeper than this are split into banks of
# this depth, each bank's read data registered beside its block RAMs before one multiplexer
# picks the bank: a deep memory's block RAMs are spread over the die, and their slow outputs
# cannot also cross it through a multiplexer in one cycle. 2048 words of an ECP5 core's
# 64-bit words are eight DP16KD, joined by Yosys through at most a 4:1 multiplexer.
BANK_WORDS = 2048


def address_bits(depth: int) -> int:
    """Address width of a memory of `depth` words (at least one bit)."""
    return max(1, (depth - 1).bit_length())


@dataclass(frozen=True)
class LayerGeometry:
    """Weight layer k: `n_in × n_out` synapses in words of `lanes` weights."""

    index: int
    n_in: int
    n_out: int
    lanes: int
    blocks: int  # words per presynaptic row, ceil(n_out / lanes)
    event_bits: int  # signed width of an event value x_k,i,t
    signed_events: bool  # an event may be negative (a hard-tanh activation)
    multi_bit: bool  # a multiply per synapse (else a spike: add the weight)
    sum_bits: int  # exact Σ_i W[i, j] x_i
    activity_bits: int  # signed width of A_k,i
    signed_activity: bool  # A_k,i may be negative (hard-tanh)

    @property
    def words(self) -> int:
        return self.n_in * self.blocks

    @property
    def banks(self) -> tuple[tuple[str, int, int], ...]:
        """(memory name, first word, words) of each bank of the layer's weight memory: one
        memory `weights<k>` up to `BANK_WORDS` words, else `weights<k>_<b>`, b = 0, 1, …"""
        name = f"weights{self.index}"
        if self.words <= BANK_WORDS:
            return ((name, 0, self.words),)
        starts = range(0, self.words, BANK_WORDS)
        return tuple(
            (f"{name}_{b}", start, min(BANK_WORDS, self.words - start))
            for b, start in enumerate(starts)
        )

    @property
    def weight_latency(self) -> int:
        """Cycles from a weight word's address to its data: the block RAM's, and where the
        memory is banked the address register's and the bank output register's."""
        return 1 if len(self.banks) == 1 else 3

    def real_lanes(self, block: int) -> int:
        """Lanes of `block` that hold a neuron (the last block may be padded)."""
        return min(self.lanes, self.n_out - block * self.lanes)


@dataclass(frozen=True)
class Geometry:
    """The core's widths: per layer, per neuron state field, and per learning quantity."""

    spec: CoreSpec

    @cached_property
    def layers(self) -> tuple[LayerGeometry, ...]:
        spec = self.spec
        sizes = spec.layer_sizes
        out = []
        for k in range(len(sizes) - 1):
            n_in, n_out = sizes[k], sizes[k + 1]
            if k == 0 and not spec.conv:  # the inputs; behind a front end, its spikes
                multi = spec.encoding == "intensity"
                top = (1 << spec.input_bits) - 1 if multi else 1
                low = 0
            elif spec.spiking:
                multi, top, low = False, 1, 0
            else:
                multi, top, low = True, spec.activation_max, -spec.activation_max
            w_max = 1 << (spec.weight_bits - 1)
            bound = n_in * w_max * max(top, -low)
            if spec.spiking:
                act_low, act_high = 0, spec.time_steps * top
            else:
                act_low, act_high = low, top
            out.append(
                LayerGeometry(
                    index=k,
                    n_in=n_in,
                    n_out=n_out,
                    lanes=spec.lanes,
                    blocks=spec.blocks(n_out),
                    event_bits=signed_bits(low, top),
                    signed_events=low < 0,
                    multi_bit=multi or not spec.spiking,
                    sum_bits=signed_bits(-bound, bound),
                    activity_bits=signed_bits(act_low, act_high),
                    signed_activity=act_low < 0,
                )
            )
        return tuple(out)

    @property
    def lane_stride(self) -> int:
        """Bus addresses per weight or neuron word: lanes rounded up to a power of two."""
        return 1 << (self.spec.lanes - 1).bit_length()

    @property
    def count_bits(self) -> int:
        """Unsigned spike-count width, 0 … T."""
        return self.spec.time_steps.bit_length()

    @property
    def window_bits(self) -> int:
        """Exact Σ_t I_t of T saturated currents (saturated to ACC only when read)."""
        half = 1 << (self.spec.acc_bits - 1)
        return signed_bits(-self.spec.time_steps * half, self.spec.time_steps * half)

    @property
    def factor_bits(self) -> int:
        """Signed width of a post factor p_k,j (contract §6–§7), shared by all layers."""
        spec = self.spec
        if spec.rule == "lfp":
            return spec.acc_bits
        top = spec.time_steps if spec.spiking else spec.activation_max
        return signed_bits(-top, 2 * top)

    @property
    def max_blocks(self) -> int:
        return max(layer.blocks for layer in self.layers)

    @property
    def max_width(self) -> int:
        return max(self.spec.layer_sizes)
