"""The UART bridge in simulation, driven by the host side itself.

`SerialBus` runs over `SimPort`, a serial port whose far end is the bridge's pins in an
Amaranth simulation: written bytes go out on `rx` bit by bit, bytes on `tx` are sampled
in the middle of each bit, and `read` runs the simulation until the bytes are there or the
port's timeout passes, as pyserial's does. So the bytes on the wire are the host's own.

`SerialBus`'s coroutines never wait on an event loop (the port blocks), so `complete` runs
them to the end directly: an asyncio loop would try to close the simulator's own
asynchronous generators when it stops.
"""

from collections import deque
from collections.abc import Coroutine
from typing import Any

import numpy as np
import pytest
from amaranth.hdl import Array, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator, SimulatorContext

from firmware.driver import CoreDriver
from firmware.serial_bus import SerialBus, encode_read, encode_write
from quant.errors import BusError, ConfigError
from quant.spec import CoreSpec
from rtl.board import UartCore
from rtl.bus import wishbone
from rtl.memory_map import IDENT, REGISTERS, STATUS_BITS
from rtl.uart_bridge import CMD_READ, STATUS_BAD, UartBridge, UartConfig, UartTransmitter
from sim.chip.golden import GoldenCore

PERIOD = 1e-6
CONFIG = UartConfig(divisor=4, timeout=160)
ADDR_BITS = 6
WORDS = 16  # memory at 0..15; SILENT never answers; every other address answers err
SILENT = 0x21
PORT_TIMEOUT = 2 * CONFIG.timeout  # longer than the bridge's, as `SerialBus.resync` needs


class Target(wiring.Component):
    """A Wishbone target: a small memory answering one cycle after the request (as the
    core does), `err` elsewhere, and one address that never answers."""

    bus: In(wishbone(ADDR_BITS))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        bus = self.bus
        words = Array(Signal(32, name=f"word{n}") for n in range(WORDS))
        m.d.sync += [bus.ack.eq(0), bus.err.eq(0)]
        with m.If(bus.cyc & bus.stb & ~bus.ack & ~bus.err):
            with m.If(bus.adr < WORDS):
                m.d.sync += [bus.ack.eq(1), bus.dat_r.eq(words[bus.adr])]
                with m.If(bus.we):
                    m.d.sync += words[bus.adr].eq(bus.dat_w)
            with m.Elif(bus.adr != SILENT):
                m.d.sync += bus.err.eq(1)
        return m


def complete(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("a SerialBus coroutine waited on an event loop")


class SimPort:
    """A serial port wired to `rx`/`tx` of a simulated design, `divisor` cycles per bit.
    Its read timeout counts from when the last written byte has left."""

    def __init__(self, sim: Simulator, rx: Signal, tx: Signal, divisor: int) -> None:
        self.sim, self.rx, self.tx, self.divisor = sim, rx, tx, divisor
        self.outgoing: deque[list[tuple[int, int]]] = deque()  # (level, cycles) runs
        self.incoming = bytearray()
        self.cycles = 0
        self.sending = False
        sim.add_testbench(self._send, background=True)
        sim.add_testbench(self._receive, background=True)

    async def _send(self, ctx: SimulatorContext) -> None:
        ctx.set(self.rx, 1)
        while True:
            if not self.outgoing:
                await ctx.tick()
                continue
            self.sending = True
            for level, cycles in self.outgoing.popleft():
                ctx.set(self.rx, level)
                await self._bit(ctx, cycles)
            self.sending = False

    async def _bit(self, ctx: SimulatorContext, cycles: int | None = None) -> None:
        # Single ticks: the simulator's repeating triggers are asynchronous generators,
        # which complain when a simulation is dropped while they wait.
        for _ in range(self.divisor if cycles is None else cycles):
            await ctx.tick()

    async def _receive(self, ctx: SimulatorContext) -> None:
        while True:
            await ctx.tick()
            if ctx.get(self.tx):
                continue
            await self._bit(ctx, self.divisor // 2)
            byte = 0
            for n in range(8):
                await self._bit(ctx)
                byte |= ctx.get(self.tx) << n
            await self._bit(ctx)
            if ctx.get(self.tx):  # a byte with a low stop bit is dropped, as a UART does
                self.incoming.append(byte)

    def run(self, cycles: int) -> None:
        self.cycles += cycles
        self.sim.run_until(self.cycles * PERIOD)

    def frame(self, byte: int, stop: int = 1) -> list[tuple[int, int]]:
        bits = (0, *(byte >> n & 1 for n in range(8)), stop)
        return [(bit, self.divisor) for bit in bits]

    def write(self, data: bytes) -> int:
        self.outgoing.extend(self.frame(byte) for byte in data)
        return len(data)

    def read(self, size: int) -> bytes:
        waited = 0
        while len(self.incoming) < size and waited < PORT_TIMEOUT:
            self.run(self.divisor)
            if not (self.outgoing or self.sending):
                waited += self.divisor
        data = bytes(self.incoming[:size])
        del self.incoming[:size]
        return data


class Bench:
    """The bridge on the target, its port, and every bus cycle it made:
    `(address, write, data written, "ack" | "err")`."""

    def __init__(self) -> None:
        m = Module()
        m.submodules.bridge = self.bridge = UartBridge(ADDR_BITS, CONFIG)
        m.submodules.target = target = Target()
        wiring.connect(m, self.bridge.bus, target.bus)
        self.sim = Simulator(m)
        self.sim.add_clock(PERIOD)
        self.port = SimPort(self.sim, self.bridge.rx, self.bridge.tx, CONFIG.divisor)
        self.bus = SerialBus(self.port)
        self.cycles: list[tuple[int, bool, int, str]] = []
        self.sim.add_testbench(self._monitor, background=True)

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return complete(coroutine)

    async def _monitor(self, ctx: SimulatorContext) -> None:
        bus = self.bridge.bus
        while True:
            await ctx.tick()
            if ctx.get(bus.cyc & bus.stb & (bus.ack | bus.err)):
                we, ack = ctx.get(bus.we), ctx.get(bus.ack)
                data = ctx.get(bus.dat_w) if we else 0
                self.cycles.append((ctx.get(bus.adr), bool(we), data, "ack" if ack else "err"))


@pytest.fixture
def bench() -> Bench:
    return Bench()


def test_write_then_read(bench: Bench) -> None:
    values = {0: 0xDEADBEEF, 7: 0x01234567, 15: 0x80000001}
    for address, value in values.items():
        bench.run(bench.bus.write(address, value))
    bench.run(bench.bus.write(3, -2))  # a signed value goes out in two's complement
    assert {a: bench.run(bench.bus.read(a)) for a in values} == values
    assert bench.run(bench.bus.read(3)) == 0xFFFFFFFE
    assert bench.run(bench.bus.read(1)) == 0
    writes = [(a, True, v, "ack") for a, v in values.items()] + [(3, True, 0xFFFFFFFE, "ack")]
    reads = [(a, False, 0, "ack") for a in (*values, 3, 1)]
    assert bench.cycles == writes + reads  # one bus cycle per command, nothing else


def test_err_answers_and_keeps_the_link_in_step(bench: Bench) -> None:
    with pytest.raises(BusError, match=r"bus error at address 0x20: the core refused the read"):
        bench.run(bench.bus.read(0x20))
    with pytest.raises(BusError, match="refused the write"):
        bench.run(bench.bus.write(0x3F, 5))
    bench.run(bench.bus.write(2, 9))
    assert bench.run(bench.bus.read(2)) == 9
    assert [c[3] for c in bench.cycles] == ["err", "err", "ack", "ack"]


def test_silent_target_and_wide_address_answer_err(bench: Bench) -> None:
    """A target that never answers is given up on after the timeout; an address wider than
    the bus is refused without a bus cycle (it would alias a real one)."""
    with pytest.raises(BusError, match="0x21"):
        bench.run(bench.bus.read(SILENT))
    with pytest.raises(BusError, match="0x41"):
        bench.run(bench.bus.write(1 << ADDR_BITS | 1, 7))
    bench.run(bench.bus.write(1, 7))
    assert bench.run(bench.bus.read(1)) == 7
    assert bench.cycles == [(1, True, 7, "ack"), (1, False, 0, "ack")]


def test_back_to_back_and_streamed_writes(bench: Bench) -> None:
    """Writes streamed without waiting for their answers (the receiver keeps running while
    the transmitter answers), then reads with no gap between commands."""
    bench.run(bench.bus.write_many((a, a * 0x01010101) for a in range(8)))
    assert [bench.run(bench.bus.read(a)) for a in range(8)] == [a * 0x01010101 for a in range(8)]
    with pytest.raises(BusError, match="0x30"):
        bench.run(bench.bus.write_many([(4, 1), (0x30, 2), (5, 3)]))
    assert [bench.run(bench.bus.read(a)) for a in (4, 5)] == [1, 3]  # still in step


def test_unknown_command_byte_is_answered_bad(bench: Bench) -> None:
    bench.port.write(b"\x00\xff")
    assert bench.port.read(2) == bytes([STATUS_BAD, STATUS_BAD])
    bench.port.write(bytes([CMD_READ]))  # a read cut short: dropped after the timeout
    assert bench.port.read(1) == b""
    bench.run(bench.bus.write(6, 66))
    assert bench.run(bench.bus.read(6)) == 66
    assert bench.cycles == [(6, True, 66, "ack"), (6, False, 0, "ack")]


def test_framing_error_drops_the_command(bench: Bench) -> None:
    """A byte with a low stop bit ends the command it interrupts, unanswered: the next
    command is taken whole, not as the rest of the broken one."""
    bench.port.write(encode_write(2, 0x11111111)[:3])
    bench.port.outgoing.append([*bench.port.frame(0x55, stop=0), (1, CONFIG.divisor)])
    bench.run(bench.bus.write(5, 0x22222222))
    assert bench.cycles == [(5, True, 0x22222222, "ack")]


def test_glitch_is_not_a_start_bit(bench: Bench) -> None:
    bench.port.outgoing.append([(0, CONFIG.divisor // 2 - 1), (1, CONFIG.divisor)])
    bench.run(bench.bus.write(4, 44))
    assert bench.port.read(1) == b""  # nothing answered the glitch
    assert bench.cycles == [(4, True, 44, "ack")]


def test_transmitter_waveform() -> None:
    """Answers leave LSB first between a start and a full stop bit, even when the next
    answer is handed over in the first cycle the transmitter takes it."""
    dut = UartTransmitter(CONFIG.divisor)
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    line: list[int] = []

    async def record(ctx: SimulatorContext) -> None:
        while True:
            await ctx.tick()
            line.append(ctx.get(dut.tx))

    async def hand_over(ctx: SimulatorContext) -> None:
        for data, length in ((0x3C06, 2), (0x15, 1)):
            ctx.set(dut.data, data)
            ctx.set(dut.length, length)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            while ctx.get(dut.busy):
                await ctx.tick()

    sim.add_testbench(record, background=True)
    sim.add_testbench(hand_over)
    sim.run()
    first, second = (
        [bit for b in answer for bit in (0, *(b >> n & 1 for n in range(8)), 1)]
        for answer in ((0x06, 0x3C), (0x15,))
    )
    # The second answer is taken as the first one's last stop bit begins; that stop bit
    # still lasts a whole bit, and one cycle more for the hand-over.
    expected = [bit for bit in first for _ in range(CONFIG.divisor)] + [1]
    expected += [bit for bit in second[:-1] for _ in range(CONFIG.divisor)]
    sent = line[line.index(0) :]
    assert sent[: len(expected)] == expected


def test_wrong_baud_rate_fails_clearly_and_recovers(bench: Bench) -> None:
    """A host at twice the bit time gets no acknowledgement, its write is not executed,
    and after a resync at the right rate the link works."""
    bench.port.divisor = 2 * CONFIG.divisor
    with pytest.raises(BusError, match="UART bridge"):
        bench.run(bench.bus.write(9, 0x5A5A5A5A))
    bench.port.divisor = CONFIG.divisor
    bench.run(bench.bus.resync())
    assert bench.run(bench.bus.read(9)) == 0
    assert not any(write for _, write, _, _ in bench.cycles)


def test_host_encoding() -> None:
    assert encode_read(0x504) == bytes([CMD_READ, 0x04, 0x05, 0, 0])
    assert encode_write(1, -1)[5:] == b"\xff\xff\xff\xff"
    for bad in (lambda: encode_read(-1), lambda: encode_write(0, 1 << 32)):
        with pytest.raises(ConfigError, match="does not fit"):
            bad()


def test_config_for_baud() -> None:
    assert UartConfig.for_baud(25e6) == UartConfig(217, 2_500_000)
    with pytest.raises(ConfigError, match="not reachable"):
        UartConfig.for_baud(25e6, 4_000_000)
    with pytest.raises(ConfigError, match="at least 4"):
        UartConfig(3, 100)
    with pytest.raises(ConfigError, match="12 bit times"):
        UartConfig(8, 50)


TINY = CoreSpec(
    name="tiny",
    inputs=3,
    hidden=(),
    classes=2,
    input_bits=2,
    time_steps=4,
    thresholds=(8,),
    rule="none",
    lanes=2,
)


def test_core_answers_through_the_uart() -> None:
    """The board's core behind the bridge, driven by the host driver: ident reads back, the
    spec hash matches, weights load, a sample runs and its outputs equal the golden
    model's, and the LEDs show busy until the sample is done."""
    dut = UartCore(TINY, CONFIG)
    sim = Simulator(dut)
    sim.add_clock(PERIOD)
    bus = SerialBus(SimPort(sim, dut.rx, dut.tx, CONFIG.divisor))
    lights: list[tuple[int, int]] = []

    async def watch(ctx: SimulatorContext) -> None:
        while True:
            await ctx.tick()
            busy, done = ctx.get(dut.busy), ctx.get(dut.done)
            if not lights or lights[-1] != (busy, done):
                lights.append((busy, done))

    sim.add_testbench(watch, background=True)
    assert complete(bus.read(REGISTERS["ident"][0])) == IDENT
    driver = CoreDriver(bus, TINY)
    complete(driver.identify())
    weights = [np.array([[1, 3], [1, -2], [0, 2]])]
    complete(driver.load_weights(weights))
    codes = np.array([3, 2, 1])
    golden = GoldenCore(TINY, weights).infer(codes)  # outputs [2, 3]: class 1
    assert complete(driver.run(codes)) == golden.prediction
    assert complete(driver.outputs()).tolist() == golden.output.tolist()
    assert complete(driver.register("status")) == 1 << STATUS_BITS["done"]
    assert lights == [(0, 0), (1, 0), (0, 1)]
