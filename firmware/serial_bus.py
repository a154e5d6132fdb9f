"""The host side of the UART bridge: the core's bus reads and writes over a serial port.

Speaks the protocol of `rtl.uart_bridge`, whose constants it imports, so the host and the
RTL cannot disagree on a byte. The port is any byte stream whose `read(n)` returns fewer
than `n` bytes when its timeout passes: pyserial's `Serial(device, 115200, timeout=1)` is
one, and nothing here imports pyserial.

The methods are coroutines so that `firmware.driver` runs unchanged on a simulated core and
on a board; they call the port's blocking methods directly, so any event loop runs them
(`asyncio.run`).
"""

from collections.abc import Iterable
from typing import Protocol

from quant.errors import BusError, ConfigError
from rtl.uart_bridge import (
    ADDRESS_BYTES,
    CMD_READ,
    CMD_WRITE,
    DATA_BYTES,
    STATUS_ACK,
    STATUS_BAD,
    STATUS_ERR,
)


class ByteStream(Protocol):
    """What the bus needs of a serial port."""

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int, /) -> bytes: ...


def _field(value: int, size: int, name: str, signed_too: bool = False) -> bytes:
    """`value` as `size` little-endian bytes; negative values (two's complement) only when
    `signed_too`."""
    low = -(1 << (8 * size - 1)) if signed_too else 0
    if not low <= value < 1 << (8 * size):
        raise ConfigError(f"{name} {value} does not fit in {8 * size} bits")
    return (value % (1 << (8 * size))).to_bytes(size, "little")


def encode_read(address: int) -> bytes:
    return bytes([CMD_READ]) + _field(address, ADDRESS_BYTES, "address")


def encode_write(address: int, value: int) -> bytes:
    """A write command; `value` may be negative (a signed weight) down to -2**31."""
    return (
        bytes([CMD_WRITE])
        + _field(address, ADDRESS_BYTES, "address")
        + _field(value, DATA_BYTES, "value", signed_too=True)
    )


class SerialBus:
    """32-bit word reads and writes of the core behind a UART bridge (the driver's `Bus`).

    A refused access raises `BusError` and leaves the link in step. No answer within the
    port's timeout, or an answer that is not a status byte, also raises `BusError`: the
    board is not programmed, the port or baud rate is wrong, or the link lost step, which
    `resync` repairs.
    """

    def __init__(self, port: ByteStream) -> None:
        self.port = port

    def _receive(self, size: int, what: str) -> bytes:
        data = self.port.read(size)
        if len(data) < size:
            raise BusError(
                f"no answer from the UART bridge: {len(data)} of the {size} bytes of {what} "
                "within the port's timeout (board not programmed, wrong port or baud rate?)"
            )
        return bytes(data)

    def _check(self, status: int, address: int, access: str) -> None:
        if status == STATUS_ACK:
            return
        if status == STATUS_ERR:
            raise BusError(f"bus error at address 0x{address:x}: the core refused the {access}")
        problem = "did not understand the command" if status == STATUS_BAD else "answered"
        raise BusError(
            f"the UART bridge {problem} (byte 0x{status:02x}) for the {access} at "
            f"0x{address:x}: link out of step or wrong baud rate; resync and retry"
        )

    async def read(self, address: int) -> int:
        self.port.write(encode_read(address))
        self._check(self._receive(1, "the status")[0], address, "read")
        return int.from_bytes(self._receive(DATA_BYTES, "the read data"), "little")

    async def write(self, address: int, value: int) -> None:
        self.port.write(encode_write(address, value))
        self._check(self._receive(1, "the status")[0], address, "write")

    async def write_many(self, writes: Iterable[tuple[int, int]]) -> None:
        """Stream `(address, value)` writes and then collect their status bytes: one round
        trip over USB instead of one per write. Raises on the first refused write, after
        every status has been read, so the link stays in step."""
        writes = list(writes)
        self.port.write(b"".join(encode_write(address, value) for address, value in writes))
        statuses = self._receive(len(writes), "the write statuses")
        for (address, _), status in zip(writes, statuses, strict=True):
            self._check(status, address, "write")

    async def resync(self) -> None:
        """Drop whatever the bridge still sends until the port's timeout passes in silence;
        by then the bridge has dropped any half-received command too, provided the port's
        timeout is longer than the bridge's (0.1 s by default)."""
        while self.port.read(64):
            pass
