"""The learning core on an FPGA board, driven from a host over the board's USB serial port.

`UartCore` is the board-independent part: the UART bridge as the core's bus initiator, and
two status lines for LEDs. `Ulx3sTop` puts it on a ULX3S (Lattice ECP5): the 25 MHz
oscillator clocks the core directly (the digits core closes above 30 MHz on an ECP5, so no
PLL is needed), the FTDI UART carries the bridge, the PWR button resets, LED 0 shows busy
and LED 1 done. `board_sources` renders the top's Verilog and pin constraints through the
amaranth-boards platform, so pins and I/O standards come from the board file, not from here.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out
from amaranth.vendor import LatticeECP5Platform
from amaranth_boards.ulx3s import (
    ULX3S_12F_Platform,
    ULX3S_25F_Platform,
    ULX3S_45F_Platform,
    ULX3S_85F_Platform,
)

from quant.errors import ConfigError
from quant.spec import CoreSpec
from rtl.core import LearningCore
from rtl.memory_map import CTRL_BITS, REGISTERS
from rtl.uart_bridge import UartBridge, UartConfig

BOARDS: dict[str, type[LatticeECP5Platform]] = {
    "ulx3s-12f": ULX3S_12F_Platform,
    "ulx3s-25f": ULX3S_25F_Platform,
    "ulx3s-45f": ULX3S_45F_Platform,
    "ulx3s-85f": ULX3S_85F_Platform,
}
DEFAULT_BOARD = "ulx3s-85f"  # room for the larger cores' multipliers and memories
DEFAULT_BAUD = 115_200
BOARD_TOP = "plasticore_board"


def board_platform(board: str) -> LatticeECP5Platform:
    """A fresh platform for `board` (a platform prepares one design only)."""
    if board not in BOARDS:
        raise ConfigError(f"board must be one of {', '.join(BOARDS)}, got {board!r}")
    return BOARDS[board]()


class UartCore(wiring.Component):
    """A learning core whose bus is driven by a UART bridge.

    The core has no busy output, so `busy` follows its bus: set when a write of `ctrl` with
    the start bit is acknowledged (the core refuses a start while busy), cleared by `done`.
    """

    rx: In(1, init=1)
    tx: Out(1)
    busy: Out(1)
    done: Out(1)

    def __init__(
        self, spec: CoreSpec, uart: UartConfig, weights: Sequence[np.ndarray] | None = None
    ) -> None:
        self.spec, self.uart, self._weights = spec, uart, weights
        super().__init__()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.core = core = LearningCore(self.spec, self._weights)
        m.submodules.bridge = bridge = UartBridge(core.memory_map.addr_bits, self.uart)
        wiring.connect(m, bridge.bus, core.bus)
        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx), self.done.eq(core.done)]
        bus = bridge.bus
        started = (
            bus.ack & bus.we & (bus.adr == REGISTERS["ctrl"][0]) & bus.dat_w[CTRL_BITS["start"]]
        )
        running = Signal()
        with m.If(started):
            m.d.sync += running.eq(1)
        with m.Elif(core.done):
            m.d.sync += running.eq(0)
        m.d.comb += self.busy.eq(running & ~core.done)
        return m


class Ulx3sTop(Elaboratable):
    """The top level for a ULX3S platform (any of its ECP5 sizes)."""

    def __init__(
        self,
        spec: CoreSpec,
        weights: Sequence[np.ndarray] | None = None,
        baud: int = DEFAULT_BAUD,
    ) -> None:
        self.spec, self.weights, self.baud = spec, weights, baud

    def elaborate(self, platform: LatticeECP5Platform) -> Module:
        m = Module()

        def buffer(name: str, direction: str, port: object) -> io.Buffer:
            m.submodules[name] = pin = io.Buffer(direction, port)
            return pin

        def request(resource: str, number: int = 0) -> object:
            return platform.request(resource, number, dir="-")

        m.domains.sync = ClockDomain("sync")
        clock = buffer("clock", "i", request(platform.default_clk))
        m.d.comb += ClockSignal("sync").eq(clock.i)
        # Configuration loads every register's initial value; the button resets on demand,
        # released synchronously to the clock.
        button = buffer("button", "i", request("button_pwr"))
        m.submodules.reset = ResetSynchronizer(button.i, domain="sync")

        uart = UartConfig.for_baud(platform.default_clk_frequency, self.baud)
        m.submodules.core = core = UartCore(self.spec, uart, self.weights)
        serial = request("uart")
        m.d.comb += [
            core.rx.eq(buffer("rx", "i", serial.rx).i),
            buffer("tx", "o", serial.tx).o.eq(core.tx),
        ]
        for index, line in enumerate((core.busy, core.done)):
            m.d.comb += buffer(f"led{index}", "o", request("led", index)).o.eq(line)
        return m


@dataclass(frozen=True)
class BoardSources:
    """What place and route needs for a board: the top's Verilog and its LPF constraints."""

    board: str
    device: str  # as the platform names it, e.g. "LFE5U-85F"
    package: str  # e.g. "BG381"
    speed: str
    clock_hz: float
    verilog: str
    lpf: str


def board_sources(
    spec: CoreSpec,
    board: str = DEFAULT_BOARD,
    weights: Sequence[np.ndarray] | None = None,
    baud: int = DEFAULT_BAUD,
) -> BoardSources:
    """The board top for `spec` as Verilog (module `BOARD_TOP`) and LPF, from the
    platform's build plan."""
    platform = board_platform(board)
    plan = platform.prepare(Ulx3sTop(spec, weights, baud), name=BOARD_TOP, debug_verilog=True)
    return BoardSources(
        board=board,
        device=platform.device,
        package=platform.package,
        speed=platform.speed,
        clock_hz=platform.default_clk_frequency,
        verilog=plan.files[f"{BOARD_TOP}.debug.v"],
        lpf=plan.files[f"{BOARD_TOP}.lpf"],
    )
