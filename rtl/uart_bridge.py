"""A UART to Wishbone bridge: a host drives the core's bus over a serial line.

A serial line is what every FPGA board already has (an FTDI or CH340 bridge on USB), and a
host reaches it with nothing but a serial port; the protocol is small enough to cost a few
hundred LUTs beside the core.

The line is 8N1 at `clock / divisor` baud. Addresses are 32-bit bus word addresses; every
multi-byte field is little-endian. The byte values are the constants below, which the host
side (`firmware.serial_bus`) imports.

    host → bridge     read    CMD_READ  a0 a1 a2 a3
                      write   CMD_WRITE a0 a1 a2 a3 d0 d1 d2 d3
    bridge → host     STATUS_ACK [d0 d1 d2 d3, for a read]    the cycle was acknowledged
                      STATUS_ERR    the target answered `err`, the address is wider than
                                    the bus, or the target did not answer within `timeout`
                      STATUS_BAD    the command byte is unknown (the byte is dropped)

Every command is answered, in order. The transmitter takes a whole answer at once and the
receiver keeps running while it goes out, so a host may stream writes and collect their
status bytes afterwards (a write's answer is a ninth of its length). A byte arriving while
the bridge waits on the bus would be lost; the core answers in two cycles, far within a byte.

Two rules let a host that lost step recover: a byte with a low stop bit (a framing error:
wrong baud rate, noise) is dropped together with the command it belongs to, unanswered; and
a command whose bytes arrive more than `timeout` clock cycles apart is dropped, unanswered.
A host that sees no answer waits that long, discards what it received and starts afresh.
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from quant.errors import ConfigError
from rtl.bus import DATA_BITS, wishbone

CMD_READ = 0x52  # "R"
CMD_WRITE = 0x57  # "W"
STATUS_ACK = 0x06  # ASCII ACK
STATUS_ERR = 0x15  # ASCII NAK
STATUS_BAD = 0x3F  # "?"
ADDRESS_BYTES = 4
DATA_BYTES = DATA_BITS // 8
BAUD_TOLERANCE = 0.02  # 8N1 samples its last bit 9.5 bits in; both ends may be this far off


@dataclass(frozen=True)
class UartConfig:
    """Bit timing in clock cycles: `divisor` per bit, `timeout` before a command is dropped
    (and before a silent bus target is answered with STATUS_ERR)."""

    divisor: int
    timeout: int

    def __post_init__(self) -> None:
        if self.divisor < 4:
            raise ConfigError(
                f"divisor must be at least 4 clock cycles per bit, got {self.divisor}"
            )
        if self.timeout < 12 * self.divisor:
            raise ConfigError(
                f"timeout must be at least 12 bit times ({12 * self.divisor} cycles), "
                f"got {self.timeout}"
            )

    @classmethod
    def for_baud(cls, clock_hz: float, baud: int = 115_200, timeout_s: float = 0.1) -> "UartConfig":
        """The divisor nearest to `clock_hz / baud`; refused when the rate it gives is more
        than `BAUD_TOLERANCE` off."""
        divisor = round(clock_hz / baud)
        actual = clock_hz / max(divisor, 1)
        if abs(actual - baud) > BAUD_TOLERANCE * baud:
            raise ConfigError(
                f"baud {baud} is not reachable from a {clock_hz / 1e6:g} MHz clock "
                f"(nearest divisor {divisor} gives {actual:.0f})"
            )
        return cls(divisor, max(round(clock_hz * timeout_s), 12 * divisor))


class UartReceiver(wiring.Component):
    """8N1 receiver: samples each bit in its middle, strobes `valid` (or `error` for a low
    stop bit) for one cycle with the byte on `data`."""

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)
    error: Out(1)

    def __init__(self, divisor: int) -> None:
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(8))
        m.d.sync += [self.valid.eq(0), self.error.eq(0)]
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM():
            with m.State("idle"), m.If(~line):
                m.d.sync += timer.eq(self.divisor // 2 - 1)
                m.next = "start"
            with m.State("start"), m.If(timer == 0):
                with m.If(line):  # a glitch, not a start bit
                    m.next = "idle"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "data"
            with m.State("data"), m.If(timer == 0):
                m.d.sync += [self.data.eq(Cat(self.data[1:], line)), timer.eq(self.divisor - 1)]
                m.d.sync += bits.eq(bits + 1)
                with m.If(bits == 7):
                    m.next = "stop"
            with m.State("stop"), m.If(timer == 0):
                m.d.sync += [self.valid.eq(line), self.error.eq(~line)]
                m.next = "idle"
        return m


class UartTransmitter(wiring.Component):
    """8N1 transmitter of up to five bytes at once (an answer), so that the bridge hands
    over an answer in one cycle and goes back to receiving."""

    MAX_BYTES = 1 + DATA_BYTES

    data: In(8 * MAX_BYTES)  # byte 0 goes out first
    length: In(range(MAX_BYTES + 1))
    start: In(1)
    busy: Out(1)
    tx: Out(1, init=1)

    def __init__(self, divisor: int) -> None:
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        frame = Signal(10 * self.MAX_BYTES)
        left = Signal(range(10 * self.MAX_BYTES + 1))
        timer = Signal(range(self.divisor))
        # Free once the last bit is on the line: the bit timer runs on, so an answer taken
        # during a stop bit starts after it.
        m.d.comb += self.busy.eq(left != 0)
        with m.If(self.start & ~self.busy):
            framed = [Cat(0, self.data[8 * n : 8 * n + 8], 1) for n in range(self.MAX_BYTES)]
            ten_bits = (self.length << 3) + (self.length << 1)  # shifts: no multiplier
            m.d.sync += [frame.eq(Cat(*framed)), left.eq(ten_bits)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(left != 0):
            m.d.sync += [
                self.tx.eq(frame[0]),
                frame.eq(frame[1:]),
                left.eq(left - 1),
                timer.eq(self.divisor - 1),
            ]
        return m


class UartBridge(wiring.Component):
    """Wishbone initiator commanded over a UART (protocol in the module docstring)."""

    def __init__(self, addr_bits: int, config: UartConfig) -> None:
        if not 1 <= addr_bits <= 8 * ADDRESS_BYTES:
            raise ConfigError(f"addr_bits must be in [1, {8 * ADDRESS_BYTES}], got {addr_bits}")
        self.addr_bits, self.config = addr_bits, config
        super().__init__({"bus": Out(wishbone(addr_bits)), "rx": In(1, init=1), "tx": Out(1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        bus, config = self.bus, self.config
        m.submodules.receiver = rx = UartReceiver(config.divisor)
        m.submodules.transmitter = tx = UartTransmitter(config.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        byte = rx.data
        address = Signal(8 * ADDRESS_BYTES)
        value = Signal(DATA_BITS)
        write = Signal()
        count = Signal(range(ADDRESS_BYTES + DATA_BYTES))
        status = Signal(8)
        # Cycles left before a stalled command is dropped or a silent target is given up on.
        quiet = Signal(range(config.timeout + 1))
        m.d.sync += quiet.eq(quiet - (quiet != 0))
        beyond = address[self.addr_bits :] != 0

        with m.FSM():
            with m.State("command"), m.If(rx.valid):
                m.d.sync += [write.eq(byte == CMD_WRITE), count.eq(0), quiet.eq(config.timeout)]
                with m.If((byte == CMD_READ) | (byte == CMD_WRITE)):
                    m.next = "operands"
                with m.Else():
                    m.d.sync += status.eq(STATUS_BAD)
                    m.next = "answer"
            with m.State("operands"):
                last = Mux(write, ADDRESS_BYTES + DATA_BYTES, ADDRESS_BYTES) - 1
                with m.If(rx.error | (quiet == 0)):
                    m.next = "command"
                with m.Elif(rx.valid):
                    m.d.sync += [count.eq(count + 1), quiet.eq(config.timeout)]
                    with m.If(count < ADDRESS_BYTES):
                        m.d.sync += address.eq(Cat(address[8:], byte))
                    with m.Else():
                        m.d.sync += value.eq(Cat(value[8:], byte))
                    with m.If(count == last):
                        m.next = "cycle"
            with m.State("cycle"):
                with m.If(beyond | (quiet == 0)):
                    m.d.sync += status.eq(STATUS_ERR)
                    m.next = "answer"
                with m.Else():
                    m.d.comb += [
                        bus.cyc.eq(1),
                        bus.stb.eq(1),
                        bus.we.eq(write),
                        bus.adr.eq(address),
                        bus.dat_w.eq(value),
                    ]
                    with m.If(bus.ack | bus.err):
                        m.d.sync += [
                            status.eq(Mux(bus.ack, STATUS_ACK, STATUS_ERR)),
                            value.eq(bus.dat_r),
                        ]
                        m.next = "answer"
            with m.State("answer"), m.If(~tx.busy):
                with_data = ~write & (status == STATUS_ACK)
                m.d.comb += [
                    tx.start.eq(1),
                    tx.data.eq(Cat(status, value)),
                    tx.length.eq(Mux(with_data, 1 + DATA_BYTES, 1)),
                ]
                m.next = "command"
        return m
