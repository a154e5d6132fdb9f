"""The host bus: Wishbone B4 (classic cycles, 32-bit data, word addresses).

Wishbone because it is open, needs no licence, is what open FPGA SoC builders (LiteX,
amaranth-soc) attach peripherals to, and its classic cycle is one handshake (`stb`/`ack`)
that a small core can answer in two clocks; AXI4-Lite's five channels buy nothing for a
register-and-memory slave. `err` answers an access the core cannot serve (a memory touched
while it is busy, an invalid LFSR state) instead of returning stale data silently.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

DATA_BITS = 32


def wishbone(addr_bits: int) -> wiring.Signature:
    """The bus as its initiator sees it; the core takes the flipped signature."""
    return wiring.Signature(
        {
            "cyc": Out(1),
            "stb": Out(1),
            "we": Out(1),
            "adr": Out(addr_bits),
            "dat_w": Out(DATA_BITS),
            "dat_r": In(DATA_BITS),
            "ack": In(1),
            "err": In(1),
        }
    )
