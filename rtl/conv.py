"""The convolutional front end's event datapath (contract §3, §5, §8): each input event
reads the kernel words of the neuron positions it reaches, one a cycle, and adds them into
those positions' current words.

`ConvReach` turns an event (input row, value) into its (kernel word, state word) address
pairs; `ConvLanes` adds one kernel word into one current word; `ConvEvents` joins them
through the kernel memory; `FrontEnd` adds the conv neurons' per-step LIF update.
"""

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from quant.spec import CoreSpec
from rtl.arith import multiply, times
from rtl.geometry import Geometry
from rtl.neuron import LIFLanes, word_layout
from rtl.pipeline import delay_line


@dataclass(frozen=True)
class ConvGeometry:
    """The front end's sizes and widths, from a spec with `conv_channels > 0`."""

    channels: int  # C_in
    height: int  # H
    width: int  # W
    kernel: int  # k
    stride: int  # s
    rows: int  # H'
    cols: int  # W'
    outputs: int  # C_out
    lanes: int  # L
    blocks: int  # blocks(C_out): words per neuron position and per tap position
    kernel_bits: int  # KB
    value_bits: int  # unsigned width of an event value: input_bits, or 1 for a spike
    multi_bit: bool  # `intensity`: the value multiplies the tap; a spike adds it
    acc_bits: int  # ACC: holds every I_cv exactly (spec validation)

    @classmethod
    def of(cls, spec: CoreSpec) -> "ConvGeometry":
        assert spec.conv, f"spec {spec.name!r} has no convolutional front end"
        channels, height, width = spec.image_shape
        outputs, rows, cols = spec.conv_shape
        multi = spec.encoding == "intensity"
        return cls(
            channels=channels,
            height=height,
            width=width,
            kernel=spec.conv_kernel,
            stride=spec.conv_stride,
            rows=rows,
            cols=cols,
            outputs=outputs,
            lanes=spec.lanes,
            blocks=spec.blocks(outputs),
            kernel_bits=spec.kernel_bits,
            value_bits=spec.input_bits if multi else 1,
            multi_bit=multi,
            acc_bits=spec.acc_bits,
        )

    @property
    def inputs(self) -> int:
        return self.channels * self.height * self.width

    @property
    def kernel_words(self) -> int:
        """`C_in k² blocks(C_out)` words of the kernel memory (§5)."""
        return self.channels * self.kernel**2 * self.blocks

    @property
    def last_lanes(self) -> int:
        """Real channels of the last block of L (the others are padding)."""
        return self.outputs - (self.blocks - 1) * self.lanes

    def real_lanes(self, block: Value) -> Value:
        """The real channels of `block`."""
        return Mux(block == self.blocks - 1, self.last_lanes, self.lanes)

    @property
    def state_words(self) -> int:
        """`H' W' blocks(C_out)` words of conv neuron state (§5)."""
        return self.rows * self.cols * self.blocks

    def kernel_address(self, c: int, dy: int, dx: int, b: int) -> int:
        return ((c * self.kernel + dy) * self.kernel + dx) * self.blocks + b

    def state_address(self, row: int, col: int, b: int) -> int:
        return (row * self.cols + col) * self.blocks + b


def reciprocal(divisor: int, limit: int) -> tuple[int, int]:
    """(m, e) with `(v · m) >> e = v // divisor` for every v in [0, limit): a division by a
    constant as a constant multiply, checked here for the whole range it serves."""
    shift = max(limit - 1, 1).bit_length()
    while True:
        m = -(-(1 << shift) // divisor)
        if all((v * m) >> shift == v // divisor for v in range(limit)):
            return m, shift
        shift += 1


def _quotient(value: Value, divisor: int, limit: int) -> Value:
    """`value // divisor` for `value` in [0, limit), without a divider."""
    m, shift = reciprocal(divisor, limit)
    return times(value, m) >> shift


def event_ports(g: ConvGeometry) -> dict[str, wiring.Member]:
    """Where input events enter, one a cycle as `ready` allows, after a `rewind` per list."""
    return {
        "rewind": In(1),
        "start": In(1),
        "row": In(range(g.inputs)),
        "value": In(g.value_bits),
        "ready": Out(1),
    }


def forward(m: Module, outer: wiring.Component, inner: wiring.Component, ports: dict) -> None:
    """Connect `ports` of a unit to the same-named ports of a unit inside it."""
    for name, member in ports.items():
        source, sink = (outer, inner) if member.flow == wiring.In else (inner, outer)
        m.d.comb += getattr(sink, name).eq(getattr(source, name))


class ConvReach(wiring.Component):
    """The (kernel word, state word) pairs of one input event, one pair a cycle (§3, §5).

    An event at input row i = (c H + y) W + x reaches every neuron position (y', x') with
    dy = y − s y' and dx = x − s x' in [0, k), each over the blocks(C_out) words of its
    channels. The pairs come y' descending, then x' descending, then block b ascending;
    `last` marks an event's final pair, and an event reaching no position emits nothing.

    The rows of one list must come in ascending order after `rewind`: a pixel cursor follows
    them a pixel row (W inputs) per cycle, so that (c, y) and y's quotient and remainder by
    s come from counters; x is the row less the cursor's pixel-row start, and its quotient
    by s a constant multiply. `ready` says whether `start` is taken this cycle: one event
    waits while the previous one's pairs run and the cursor moves to its pixel row, so that
    its first pair follows the previous one's last without a gap once the cursor is there.
    The outputs other than `ready` and `last` are registers."""

    def __init__(self, spec: CoreSpec) -> None:
        self._g = g = ConvGeometry.of(spec)
        super().__init__(
            {
                **event_ports(g),
                "busy": Out(1),
                "valid": Out(1),
                "last": Out(1),
                "kernel_addr": Out(range(g.kernel_words)),
                "state_addr": Out(range(g.state_words)),
                "block": Out(range(g.blocks)),
                "x": Out(g.value_bits),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        g = self._g
        k, s, blocks = g.kernel, g.stride, g.blocks

        # The waiting event.
        pending = Signal()
        row = Signal(range(g.inputs))
        value = Signal(g.value_bits)
        # The cursor: pixel row (c, y) starting at input `base`; y = s y_div + y_mod.
        base = Signal(range(g.inputs + g.width))
        next_base = Signal(range(g.inputs + 2 * g.width), init=g.width)
        y = Signal(range(g.height))
        y_div = Signal(range(g.height // s + 1))
        y_mod = Signal(range(s))
        kernel_c = Signal(range(g.kernel_words + 1))  # c k² blocks: channel c's first word

        crossing = pending & (row >= next_base)
        with m.If(self.rewind):
            m.d.sync += [base.eq(0), next_base.eq(g.width), y.eq(0), y_div.eq(0), y_mod.eq(0)]
            m.d.sync += kernel_c.eq(0)
        with m.Elif(crossing):
            m.d.sync += [base.eq(next_base), next_base.eq(next_base + g.width)]
            with m.If(y == g.height - 1):
                m.d.sync += [
                    y.eq(0),
                    y_div.eq(0),
                    y_mod.eq(0),
                    kernel_c.eq(kernel_c + k * k * blocks),
                ]
            with m.Else():
                m.d.sync += y.eq(y + 1)
                with m.If(y_mod == s - 1):
                    m.d.sync += [y_mod.eq(0), y_div.eq(y_div + 1)]
                with m.Else():
                    m.d.sync += y_mod.eq(y_mod + 1)

        # The event's first pair: the highest y' (and x') whose window covers it.
        col = Signal(range(g.width))
        m.d.comb += col.eq(row - base)
        x_div = Signal(range(g.width // s + 1))
        m.d.comb += x_div.eq(_quotient(col, s, g.width))
        top_y = Signal(range(g.rows))
        top_x = Signal(range(g.cols))
        first_dy = Signal(range(g.height))
        first_dx = Signal(range(g.width))
        m.d.comb += [
            top_y.eq(Mux(y_div < g.rows, y_div, g.rows - 1)),
            first_dy.eq(Mux(y_div < g.rows, y_mod, y - s * (g.rows - 1))),
            top_x.eq(Mux(x_div < g.cols, x_div, g.cols - 1)),
            first_dx.eq(col - times(top_x, s)),
        ]
        reaches = (first_dy < k) & (first_dx < k)

        # The pairs: counters over (y', dy), (x', dx) and b; addresses step by constants.
        valid, last = self.valid, self.last
        b = Signal(range(blocks))
        dy = Signal(range(k))
        dx = Signal(range(k))
        yp = Signal(range(g.rows))
        xp = Signal(range(g.cols))
        dx0 = Signal(range(k))  # the event's first dx and x', for each new y'
        xp0 = Signal(range(g.cols))
        kernel_row = Signal(range(g.kernel_words))  # addresses at this y's first x', b = 0
        state_row = Signal(range(g.state_words))
        more_x = (dx + s < k) & (xp != 0)
        more_y = (dy + s < k) & (yp != 0)
        m.d.comb += last.eq(valid & (b == blocks - 1) & ~more_x & ~more_y)
        m.d.comb += self.block.eq(b)

        # An event that reaches nothing leaves at once; one that does waits for the last pair.
        located = pending & ~crossing
        load = located & reaches & (~valid | last)
        with m.If(load):
            kernel0 = kernel_c + times(first_dy, k * blocks) + times(first_dx, blocks)
            state0 = times(top_y, g.cols * blocks) + times(top_x, blocks)
            m.d.sync += pending.eq(0)
            m.d.sync += [
                valid.eq(1),
                b.eq(0),
                dy.eq(first_dy),
                dx.eq(first_dx),
                dx0.eq(first_dx),
                yp.eq(top_y),
                xp.eq(top_x),
                xp0.eq(top_x),
                self.kernel_addr.eq(kernel0),
                self.state_addr.eq(state0),
                kernel_row.eq(kernel0),
                state_row.eq(state0),
                self.x.eq(value),
            ]
        with m.Elif(last):
            m.d.sync += valid.eq(0)
        with m.Elif(valid & (b != blocks - 1)):
            m.d.sync += [
                b.eq(b + 1),
                self.kernel_addr.eq(self.kernel_addr + 1),
                self.state_addr.eq(self.state_addr + 1),
            ]
        with m.Elif(valid & more_x):
            m.d.sync += [
                b.eq(0),
                dx.eq(dx + s),
                xp.eq(xp - 1),
                self.kernel_addr.eq(self.kernel_addr + (s - 1) * blocks + 1),
                self.state_addr.eq(self.state_addr - (2 * blocks - 1)),
            ]
        with m.Elif(valid):  # more_y
            kernel_next = kernel_row + s * k * blocks
            state_next = state_row - g.cols * blocks
            m.d.sync += [
                b.eq(0),
                dy.eq(dy + s),
                yp.eq(yp - 1),
                dx.eq(dx0),
                xp.eq(xp0),
                kernel_row.eq(kernel_next),
                state_row.eq(state_next),
                self.kernel_addr.eq(kernel_next),
                self.state_addr.eq(state_next),
            ]

        m.d.comb += [self.ready.eq(~pending | load | (located & ~reaches))]
        m.d.comb += self.busy.eq(pending | valid)
        with m.If(located & ~reaches):
            m.d.sync += pending.eq(0)
        with m.If(self.start & self.ready):
            m.d.sync += [pending.eq(1), row.eq(self.row), value.eq(self.value)]
        return m


def current_layout(spec: CoreSpec) -> data.ArrayLayout:
    """A word of conv currents: the L channels of one neuron position, exact in ACC bits."""
    return data.ArrayLayout(signed(spec.acc_bits), spec.lanes)


def kernel_layout(spec: CoreSpec) -> data.ArrayLayout:
    """A kernel word: the taps of L output channels at one (c, dy, dx) (§5)."""
    return data.ArrayLayout(signed(spec.kernel_bits), spec.lanes)


def readout_ports(spec: CoreSpec) -> dict[str, wiring.Member]:
    """Where the neuron update reads a current word (a cycle later) and may clear it."""
    g = ConvGeometry.of(spec)
    return {
        "current_addr": In(range(g.state_words)),
        "zero": In(1),
        "current": Out(current_layout(spec)),
    }


class ConvLanes(wiring.Component):
    """`I[addr, l] += K_word[l] · x` for the L lanes of one current word a cycle: a spike
    adds the tap, an intensity code multiplies it (shifted adds over its few bits). The sums
    are exact without saturation: ACC holds the largest I_cv and every partial sum.

    The current words live here: a read-modify-write over two cycles (read and form the
    term, then add and write), the read port transparent to the write so that a word
    written one cycle is read right the next (consecutive events reach the same words).
    `current_addr` reads a word out a cycle later (the neuron update's port); `zero` clears
    that word at the same time, for the next step's sums. `busy` marks a write under way."""

    def __init__(self, spec: CoreSpec) -> None:
        self._spec = spec
        self._g = g = ConvGeometry.of(spec)
        super().__init__(
            {
                "en": In(1),
                "addr": In(range(g.state_words)),
                "taps": In(kernel_layout(spec)),
                "x": In(g.value_bits),
                **readout_ports(spec),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        g = self._g
        m.submodules.currents = currents = Memory(
            shape=current_layout(self._spec), depth=g.state_words, init=[]
        )
        write = currents.write_port()
        update = currents.read_port(transparent_for=(write,))
        readout = currents.read_port()

        en = Signal()
        addr = Signal.like(self.addr)
        m.d.sync += [en.eq(self.en), addr.eq(self.addr)]
        m.d.comb += [update.addr.eq(self.addr), readout.addr.eq(self.current_addr)]
        m.d.comb += [self.current.eq(readout.data), self.busy.eq(en)]

        sums = []
        for lane in range(g.lanes):
            tap = self.taps[lane]
            term = Signal(signed(g.kernel_bits + g.value_bits), name=f"term{lane}")
            m.d.sync += term.eq(multiply(tap, self.x) if g.multi_bit else tap)
            sums.append(update.data[lane] + term)
        with m.If(en):
            m.d.comb += [write.addr.eq(addr), write.en.eq(1)]
            m.d.comb += [write.data[lane].eq(total) for lane, total in enumerate(sums)]
        with m.Elif(self.zero):
            m.d.comb += [write.addr.eq(self.current_addr), write.en.eq(1), write.data.eq(0)]
        return m


class ConvEvents(wiring.Component):
    """Input events to conv currents: `ConvReach` addresses the kernel memory, whose word
    meets its state address, delayed a cycle, at `ConvLanes`. `kernel_read` marks a cycle
    that reads a kernel word and `taps` its real channels (§8: the front end's weight reads
    and taps). `busy` stays high until the last event's last word is written.

    The kernel memory is initialised from `kernels` `[C_out, C_in, k, k]` in the §5 layout
    (zero without them); the host writes it a tap at a time through `kernel_w_*` while no
    event runs, as the core's memory map does."""

    def __init__(self, spec: CoreSpec, kernels: object = None) -> None:
        self._spec = spec
        self._g = g = ConvGeometry.of(spec)
        self._kernels = kernels
        super().__init__(
            {
                **event_ports(g),
                "busy": Out(1),
                **readout_ports(spec),
                **kernel_read_ports(spec),
                **kernel_write_ports(spec),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        g = self._g
        m.submodules.reach = reach = ConvReach(self._spec)
        m.submodules.lanes = lanes = ConvLanes(self._spec)
        m.submodules.kernels = kernels = Memory(
            shape=kernel_layout(self._spec),
            depth=self._g.kernel_words,
            init=[] if self._kernels is None else kernel_words(self._spec, self._kernels),
        )
        read = kernels.read_port()
        write = kernels.write_port(granularity=1)
        m.d.comb += [
            write.addr.eq(self.kernel_w_addr),
            write.data.eq(self.kernel_w_data),
            write.en.eq(self.kernel_w_en),
        ]
        forward(m, self, reach, event_ports(self._g))
        forward(m, self, lanes, readout_ports(self._spec))
        m.d.comb += [
            read.addr.eq(reach.kernel_addr),
            lanes.taps.eq(read.data),
        ]
        en = Signal()
        m.d.sync += [en.eq(reach.valid), lanes.addr.eq(reach.state_addr), lanes.x.eq(reach.x)]
        m.d.comb += [lanes.en.eq(en), self.busy.eq(reach.busy | en | lanes.busy)]
        m.d.comb += [
            self.kernel_read.eq(reach.valid),
            self.taps.eq(Mux(reach.valid, g.real_lanes(reach.block), 0)),
        ]
        return m


def kernel_read_ports(spec: CoreSpec) -> dict[str, Out]:
    """Per cycle, whether a kernel word is read and how many real taps it holds (§8)."""
    g = ConvGeometry.of(spec)
    return {"kernel_read": Out(1), "taps": Out(range(g.lanes + 1))}


def kernel_write_ports(spec: CoreSpec) -> dict[str, In]:
    """The host's write port into the kernel memory: a word address, the word, and an
    enable per lane (the host writes one tap at a time)."""
    g = ConvGeometry.of(spec)
    return {
        "kernel_w_addr": In(range(g.kernel_words)),
        "kernel_w_data": In(kernel_layout(spec)),
        "kernel_w_en": In(g.lanes),
    }


def kernel_words(spec: CoreSpec, kernels: object) -> list[list[int]]:
    """The kernel memory's words (§5): word (c, dy, dx, b) holds K[bL … bL + L − 1, c, dy, dx],
    zero past C_out."""
    g = ConvGeometry.of(spec)
    words = []
    for c in range(g.channels):
        for dy in range(g.kernel):
            for dx in range(g.kernel):
                taps = [int(kernels[o][c][dy][dx]) for o in range(g.outputs)]
                taps += [0] * (g.blocks * g.lanes - g.outputs)
                words += [taps[b * g.lanes : (b + 1) * g.lanes] for b in range(g.blocks)]
    return words


def conv_state_layout(spec: CoreSpec) -> data.ArrayLayout:
    """A word of conv neuron state: the L channels of one neuron position (§5)."""
    return word_layout(spec, None)


class FrontEnd(wiring.Component):
    """The front end (§3): input events into conv currents (`ConvEvents`), and per step the
    LIF update of every conv neuron word at θ_cv, whose spikes leave a word a cycle.

    `step` starts a walk over the `H' W' blocks(C_out)` state words in address order (`first`
    at t = 1 treats the stored state as rest; `clear` zeroes each current word as it is
    read, for the next events: every step under `spikes`, the last step under `intensity`,
    whose currents serve the whole sample). A word is read, its current
    with it; both enter the LIF lanes; two cycles later the new state is written back and
    `fired` holds the word's spike mask (`pos` its neuron position, `block` its channels).
    `hold` pauses the walk (a word is issued only in cycles without it) for a consumer of
    the spikes slower than a word a cycle. `busy` stays high while events or a walk are
    under way. `count_addr` reads a word's spike counts out a cycle later (`counts`): layer
    1's presynaptic activity `n_cv` when it learns (§3)."""

    def __init__(self, spec: CoreSpec, kernels: object = None) -> None:
        self._spec = spec
        self._g = g = ConvGeometry.of(spec)
        self._kernels = kernels
        super().__init__(
            {
                **event_ports(g),
                **kernel_write_ports(spec),
                **kernel_read_ports(spec),
                "step": In(1),
                "first": In(1),
                "clear": In(1),
                "hold": In(1),
                "busy": Out(1),
                "fired_valid": Out(1),
                "fired": Out(g.lanes),
                "pos": Out(range(g.rows * g.cols)),
                "block": Out(range(g.blocks)),
                "count_addr": In(range(g.state_words)),
                "counts": Out(data.ArrayLayout(Geometry(spec).count_bits, g.lanes)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec, g = self._spec, self._g
        m.submodules.events = events = ConvEvents(spec, self._kernels)
        m.submodules.neurons = neurons = LIFLanes(spec, None)
        m.submodules.state = state = Memory(
            shape=conv_state_layout(spec), depth=g.state_words, init=[]
        )
        state_r = state.read_port()
        state_w = state.write_port()
        count_r = state.read_port()
        m.d.comb += count_r.addr.eq(self.count_addr)
        m.d.comb += [self.counts[lane].eq(count_r.data[lane].n) for lane in range(g.lanes)]
        ports = {**event_ports(g), **kernel_write_ports(spec), **kernel_read_ports(spec)}
        forward(m, self, events, ports)

        # The walk: 1 a word is read (state and current); 2 both enter the LIF lanes;
        # 3 the new state is written back and the spikes leave.
        walking, first, clear = Signal(), Signal(), Signal()  # `first`, `clear` as stepped
        issue = Signal()  # a word is read this cycle
        word = Signal(range(g.state_words + 1))
        pos = Signal(range(g.rows * g.cols))
        block = Signal(range(g.blocks))
        live = delay_line(m, "walk_live", 3)
        at = delay_line(m, "walk_word", 3, range(g.state_words))
        pos_at = delay_line(m, "walk_pos", 3, range(g.rows * g.cols))
        block_at = delay_line(m, "walk_block", 3, range(g.blocks))
        with m.If(self.step):
            m.d.sync += [walking.eq(1), word.eq(0), pos.eq(0), block.eq(0)]
            m.d.sync += [first.eq(self.first), clear.eq(self.clear)]
        with m.Elif(issue):
            m.d.sync += word.eq(word + 1)
            with m.If(block == g.blocks - 1):
                m.d.sync += [block.eq(0), pos.eq(pos + 1)]
            with m.Else():
                m.d.sync += block.eq(block + 1)
            with m.If(word == g.state_words - 1):
                m.d.sync += walking.eq(0)
        m.d.comb += [
            issue.eq(walking & ~self.hold),
            state_r.addr.eq(word),
            events.current_addr.eq(word),
            events.zero.eq(issue & clear),
        ]
        m.d.sync += [
            live[1].eq(issue),
            at[1].eq(word),
            pos_at[1].eq(pos),
            block_at[1].eq(block),
        ]
        # A padding lane never fires, whatever taps the host wrote into its kernel lanes.
        real = Mux(block_at[1] == g.blocks - 1, (1 << g.last_lanes) - 1, (1 << g.lanes) - 1)
        m.d.comb += [
            neurons.state.eq(state_r.data),
            neurons.current.eq(events.current),
            neurons.first.eq(first),
            neurons.real.eq(real),
        ]
        with m.If(live[2]):
            m.d.comb += [state_w.addr.eq(at[2]), state_w.data.eq(neurons.next), state_w.en.eq(1)]
        m.d.comb += [
            self.fired_valid.eq(live[2]),
            self.fired.eq(neurons.spikes),
            self.pos.eq(pos_at[2]),
            self.block.eq(block_at[2]),
            self.busy.eq(events.busy | walking | live[1] | live[2]),
        ]
        return m
