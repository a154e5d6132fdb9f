"""The learning core: memories, units and the sequencer of `docs/hardware_contract.md`.

The sequencer is generated per layer from the spec (the layer loop is unrolled into FSM
states, so each state touches its own layer's memories without run-time muxes):

    ENC            not a state: from the step's start (every step for `spikes`, once for
                   `intensity`) beside ACC_0, the input memory is read a word of inputs a
                   cycle; the word's nonzero inputs (or the spikes of the sigma-delta encoder,
                   run on all its lanes) go through a priority encoder into the input event
                   list, one a cycle, lowest first, the scan stalling only while a word waits
                   for them. ACC_0's block 0 streams the list as it grows, as a hidden layer's
                   block 0 does: the scan shows only where it outlasts block 0's words.
                   With the convolutional front end the events go into it instead
    FRONT          with the front end, each step: once its input events are in (under
                   `intensity` only at t = 1, their currents kept), its neurons update a
                   word of L channels a cycle (`rtl/conv.py`); their spikes queue (the walk
                   held back while the queue could overflow) and enter layer 1's event list
                   one a cycle, behind which ACC_0 streams as above. Layer 1's learning
                   scan reads the conv neurons' spike counts word by word (§5's order)
    ACC_k          issue the layer's weight words, block after block of L neurons with no gap:
                   every event of the input list for block 0, then for block 1, …; a layer
                   with no events (layer 1 after t = 1 under `intensity`) issues one block per
                   cycle. Behind it, per layer (`AccPipeline`, a stage a cycle): the event
                   arrives and its row's first word address is formed; the word is addressed;
                   it arrives and is registered; it enters the MAC, whose sums hold it a cycle
                   later (two where it multiplies: the products are registered). After a
                   block's last word (or its end, without events) comes its update: UPD, the
                   cycle its sums are final, they and the block's state enter the neuron lanes
                   as the MAC restarts on the next block; NEU, a cycle later, the new state is
                   written back and the fired lanes go to the emitter
    EMIT           behind every ACC: the emitter registers a block's fired lanes (spikes or
                   nonzero activations) and appends one a cycle, lowest neuron first, to the
                   next layer's list; later blocks' words queue behind it. Layer k + 1
                   starts as soon as layer k has issued its last block; its block 0 follows
                   the list as it grows and ends once layer k has nothing in flight or
                   waiting. Hard-tanh holds one block's values: its blocks wait for the
                   previous block's append
    HANDOVER/PASS  with hidden layers the output layer's ACC has an issuer of its own: at the
                   last block of the layer below, step t goes to it once it has issued step
                   t − 1 (HANDOVER); once that layer's list is complete (PASS) the sequencer
                   goes on with step t + 1, whose spikes fill the output layer's other list
                   (two, by step parity) while it accumulates step t. FINISH waits for the
                   output layer's last update of the window. Without hidden layers ACC_0
                   ends each step
    PRED_*         arg-max of the output (count, then window current, then lower index): a
                   class read a cycle, compared with the best so far the cycle after
    PF_k           learning, k = K … 1: one word of post factors per cycle (DRTP or LFP unit,
                   written two cycles after the block's state arrives)
    SCAN_k/VISIT_k the visit order of §5: one visited word per cycle (read, registered, through
                   the update lanes' stages, written back; LFP also sends the reward down). A
                   layer without post factors skips its rows; the last word of a row also
                   scans the next row, so active rows follow one another without a gap and a
                   silent row after an active one costs nothing; the other silent rows cost a
                   SCAN cycle each. Under `intensity` layer 1 walks the input event list
                   (exactly its active rows), each entry read a cycle before it is taken.
                   SCAN's and VISIT's datapaths run under phase flags of their own, not the
                   decode of this state. DRAIN_k waits for the layer's last write

Timing: every path runs between registers through a few logic levels, for about 100 MHz
on an ECP5. A block RAM's read data is registered before any use (its output alone takes
~6 ns there); a weight memory deeper than `BANK_WORDS` is banked (`rtl.weight_memory`),
its read address registered before it fans out to the banks and each bank's output
registered before the bank is chosen, two cycles more for that layer's readers (`mac_in`,
VISIT's WORD stage, `bus_latency`). Every multiplier's product is registered, and
addresses come from registers through at most an adder and a multiplexer.
The pipelines cost cycles, never throughput: a word a cycle still enters each MAC and
update lanes, the latency shows only where a layer waits for the one below (and the step
for the output layer) to drain. One exception is left: SCAN/VISIT of a layer above 1 (and
of layer 1 behind the front end) decide on the word read the cycle it arrives: above layer
1 the layer below's fired-lane mask (L bits, written a cycle after its state word), behind
the front end its spike counts (each lane tested for activity before the lane is chosen).

Weights live in one memory (or its banks) per layer, words of L lanes (§5); neuron state
in one memory per layer, a word per block, and in a learning core beside each hidden
layer's state word the mask of its fired lanes (`fired<k>`). The host sees the memories
through the bus only while the core is idle; the bus answers two cycles after a request,
four where a weight memory is banked (`bus_latency`).
"""

import functools
import itertools
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import (
    Array,
    Cat,
    Const,
    Fragment,
    Module,
    Mux,
    Shape,
    Signal,
    Value,
    signed,
    unsigned,
)
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from quant.counters import KINDS, PHASES
from quant.spec import CoreSpec
from quant.tables import projection_rom, projection_seed
from rtl.arith import first_set, lfsr_states, saturate, several, times
from rtl.bus import DATA_BITS, wishbone
from rtl.conv import (
    ConvGeometry,
    FrontEnd,
    conv_state_layout,
    current_layout,
    kernel_layout,
)
from rtl.counters import PerfCounters
from rtl.drtp import DRTPFactors
from rtl.emitter import Emitter
from rtl.geometry import Geometry, LayerGeometry, address_bits
from rtl.lfp import LFPFactors
from rtl.mac import MacLanes
from rtl.memory_map import CTRL_BITS, IDENT, REGISTERS, MemoryMap, counter_address, spec_hash
from rtl.neuron import HardTanhLanes, LIFLanes, output_of, word_layout
from rtl.pipeline import delay_line, registered
from rtl.update import UpdateLanes
from rtl.weight_memory import WeightMemory


def weight_words(spec: CoreSpec, weights: np.ndarray) -> list[list[int]]:
    """Layer weights `[n_in, n_out]` as memory words of `lanes` weights, zero-padded."""
    lanes = spec.lanes
    n_in, n_out = weights.shape
    padded = np.zeros((n_in, spec.blocks(n_out) * lanes), dtype=np.int64)
    padded[:, :n_out] = weights
    return padded.reshape(-1, lanes).tolist()


def projection_words(spec: CoreSpec, layer: int) -> list[int]:
    """DRTP projection ROM of hidden `layer`: one bit per lane (1: +1, 0: −1), one word per
    (label, block), label-major, zero-padded like the weights."""
    rows = projection_rom(spec, layer) > 0
    lanes = spec.lanes
    padded = np.zeros((spec.classes, spec.blocks(rows.shape[1]) * lanes), dtype=bool)
    padded[:, : rows.shape[1]] = rows
    return [
        int(sum(int(bit) << n for n, bit in enumerate(word))) for word in padded.reshape(-1, lanes)
    ]


# Words the front end's spike queue holds; its walk is held back at `CONV_QUEUE - 4`
# queued, as up to four more words (one issued, two in its pipeline, one landing) arrive.
CONV_QUEUE = 8


def bus_latency(geo: Geometry) -> int:
    """Cycles from a bus request to its answer: a weight word's read and its register."""
    return 1 + max(layer.weight_latency for layer in geo.layers)


def mac_in(layer: LayerGeometry) -> int:
    """The ACC pipeline's stage where a weight word enters the MAC: 1 the event arrives,
    2 its weight word is addressed, the memory's latency later it arrives and is registered
    (`words`), a stage later it enters the MAC."""
    return 3 + layer.weight_latency


class AccPipeline:
    """One layer's ACC pipeline: per stage s ≥ 1, whether it carries a weight word (up to the
    MAC, `word`), a block's end (after its last word, or alone for a block without words)
    and the block. Stage 1 is set by the sequencer; every stage moves on each cycle."""

    def __init__(self, m: Module, layer: int, mac_at: int, depth: int, block_shape: object) -> None:
        self.word = delay_line(m, f"acc{layer}_word", mac_at)
        self.end = delay_line(m, f"acc{layer}_end", depth)
        self.block = delay_line(m, f"acc{layer}_block", depth, block_shape)
        self.later = Signal(name=f"acc{layer}_later")  # some stage past the first is taken
        moving = [v for s, v in self.word.items() if s < len(self.word)]
        moving += [v for s, v in self.end.items() if s < len(self.end)]
        m.d.sync += self.later.eq(Cat(*moving).any())  # what is in stages 2 … next cycle

    def busy(self) -> Value:
        return self.later | self.word[1] | self.end[1]


class _Counts:
    """Collects `(condition, phase, kind, amount)` terms and drives the counter increments."""

    def __init__(self) -> None:
        self.terms: list[tuple[object, str, str, object]] = []

    def add(self, condition: object, phase: str, **kinds: object) -> None:
        for kind, amount in kinds.items():
            self.terms.append((condition, phase, kind, amount))

    def drive(self, m: Module, counters: PerfCounters) -> None:
        for phase in PHASES:
            for kind in KINDS:
                parts = [
                    Mux(cond, amount, 0)
                    for cond, p, k, amount in self.terms
                    if p == phase and k == kind
                ]
                if parts:
                    m.d.comb += counters.increment(phase, kind).eq(sum(parts))


# Memories that exist only to learn (post factors, rewards, projection ROMs, fired-lane
# masks): the learning-state memory of the hardware reports.
LEARNING_MEMORIES = ("factors", "rewards", "projection", "fired")


def unindexed(name: str) -> str:
    """A per-layer memory's or submodule's name without its layer and bank indices
    ("weights1", "weights0_2")."""
    return re.sub(r"\d+(_\d+)?$", "", name)


@dataclass(frozen=True)
class MemoryInfo:
    """One memory of the core as elaborated: what the area and energy models price."""

    name: str
    width: int
    depth: int

    @property
    def bits(self) -> int:
        return self.width * self.depth

    @property
    def kind(self) -> str:
        return unindexed(self.name)

    @property
    def array(self) -> str:
        """The memory a bank belongs to ("weights0" for "weights0_2"): banks exist for FPGA
        timing, so the energy model prices the whole layer's array."""
        return re.sub(r"_\d+$", "", self.name)

    @property
    def learning(self) -> bool:
        return self.kind in LEARNING_MEMORIES


def memories(spec: CoreSpec) -> tuple[MemoryInfo, ...]:
    """The memories the core for `spec` instantiates (elaboration only, no Verilog)."""
    core = LearningCore(spec)
    Fragment.get(core, None)
    return tuple(core.memories)


class LearningCore(wiring.Component):
    """One learning core for `spec`, weights optionally preloaded (else zero); `poison`
    inverts a weight read that collides with a write (`rtl.block_ram`), for
    co-simulation that proves such reads unused."""

    def __init__(
        self, spec: CoreSpec, weights: Sequence[np.ndarray] | None = None, poison: bool = False
    ) -> None:
        self.spec = spec
        self.poison = poison
        self.geometry = Geometry(spec)
        self.memory_map = MemoryMap(spec)
        self._weights = weights
        self.memories: list[MemoryInfo] = []  # filled by elaborate
        super().__init__({"bus": In(wishbone(self.memory_map.addr_bits)), "done": Out(1)})

    # The elaboration is long because it is the sequencer; each block below is one state
    # group of the module docstring, in the order a sample runs through them.
    def elaborate(self, platform: object) -> Module:
        m = Module()
        spec, geo, mmap = self.spec, self.geometry, self.memory_map
        lanes, steps = spec.lanes, spec.time_steps
        layers = geo.layers
        cg = ConvGeometry.of(spec) if spec.conv else None
        last = len(layers) - 1
        counts = _Counts()
        m.submodules.counters = counters = PerfCounters()

        # -- memories ----------------------------------------------------------------------
        def memory(
            name: str, shape: object, depth: int, init: object = (), attrs: dict | None = None
        ) -> Memory:
            mem = Memory(shape=shape, depth=depth, init=init, attrs=attrs)
            m.submodules[name] = mem
            self.memories.append(MemoryInfo(name, Shape.cast(shape).width, depth))
            return mem

        n0 = spec.inputs
        # The input memory (and the encoder's) holds `per_word` inputs a word, a power of two
        # ≥ L so that a bus offset splits into word and lane by its bits: the scan reads a
        # word a cycle, the bus writes one input through its lane's enable.
        in_bits = (lanes - 1).bit_length()
        per_word = 1 << in_bits
        in_words = -(-n0 // per_word)
        inp = memory("inputs", data.ArrayLayout(spec.input_bits, per_word), in_words)
        inp_r, inp_w = inp.read_port(), inp.write_port(granularity=1)
        # Layer 1's events carry their row's first weight word, not the row: the word is
        # all they address, and no multiplier then follows the list's block RAM. Their
        # values (input codes, spikes; behind the front end its spikes) are never negative:
        # no sign bit.
        n_list = layers[0].n_in
        event0 = data.StructLayout(
            {"base": address_bits(layers[0].words), "x": unsigned(layers[0].event_bits - 1)}
        )
        ev_in = memory("events_in", event0, n_list)
        ev_in_r = ev_in.read_port()
        ev_in_w = ev_in.write_port()
        if spec.encoding == "spikes":
            phase_shape = data.ArrayLayout(spec.input_bits + 1, per_word)
            phase_mem = memory("encoder_phase", phase_shape, in_words)
            phase_r, phase_w = phase_mem.read_port(), phase_mem.write_port()
            cnt_mem = memory("input_counts", data.ArrayLayout(geo.count_bits, per_word), in_words)
            cnt_r, cnt_w = cnt_mem.read_port(), cnt_mem.write_port()
        # The hidden layers' event lists: layer k + 1 (1 ≤ k < K − 1) reads list k − 1 mod 2;
        # the output layer, which accumulates step t while the layers below run step t + 1,
        # reads one of two lists of its own (`outer` + step parity).
        hidden_events = []
        outer = min(2, last - 1) if last > 1 else 0
        if last > 0:
            width = max(spec.hidden)
            x_bits = max(layer.event_bits for layer in layers[1:])
            event_layout = data.StructLayout({"row": address_bits(width), "x": signed(x_bits)})
            for n in range(outer + 2):
                mem = memory(f"events{n}", event_layout, width)
                hidden_events.append((mem.read_port(), mem.write_port()))
        # Each weight memory's read data is registered (`words`) before any use: the block
        # RAM's output is slow.
        weights_r, weights_w, words, state_r, state_w = [], [], [], [], []
        for k, layer in enumerate(layers):
            init = weight_words(spec, self._weights[k]) if self._weights is not None else ()
            w_shape = data.ArrayLayout(signed(spec.weight_bits), lanes)
            weight_memory = WeightMemory(m, memory, layer, w_shape, init, self.poison)
            weights_r.append(weight_memory.read)
            weights_w.append(weight_memory.write)
            words.append(Signal(w_shape, name=f"word{k}"))
            m.d.sync += words[-1].eq(weights_r[-1].data)
            mem = memory(f"state{k}", word_layout(spec, k), layer.blocks)
            state_r.append(mem.read_port())
            state_w.append(mem.write_port())
        learning = spec.rule != "none"
        # Which lanes of a hidden layer's state word fired, beside the word: written a cycle
        # after it (the walk reads it only once the step is done) and read with it, so the
        # learning walk decides on an L-bit register rather than on the wide word's output
        # fields (the state read is spread over the die).
        fired_r, fired_w = [], []
        if learning:
            for k in range(last):
                mem = memory(f"fired{k}", unsigned(lanes), layers[k].blocks)
                fired_r.append(mem.read_port())
                fired_w.append(mem.write_port())
                m.d.comb += fired_r[k].addr.eq(state_r[k].addr)
        if learning:
            pf = memory("factors", data.ArrayLayout(signed(geo.factor_bits), lanes), geo.max_blocks)
            pf_r, pf_w = pf.read_port(), pf.write_port()
        if spec.rule == "lfp" and last > 0:
            r_blocks = max(layers[k].blocks for k in range(last))
            rew = memory("rewards", data.ArrayLayout(signed(spec.reward_bits), lanes), r_blocks)
            rew_r, rew_w = rew.read_port(), rew.write_port(granularity=1)
            valid = Signal(r_blocks * lanes)
        projection_r = {}
        if spec.rule == "drtp" and spec.projection == "rom":
            for k in range(last):
                rows = projection_words(spec, k)
                projection_r[k] = memory(f"projection{k}", lanes, len(rows), rows).read_port()

        if spec.conv:
            m.submodules.front_end = fe = FrontEnd(spec)
            for name, layout, depth in (
                ("kernels", kernel_layout(spec), cg.kernel_words),
                ("conv_currents", current_layout(spec), cg.state_words),
                ("conv_state", conv_state_layout(spec), cg.state_words),
            ):
                self.memories.append(MemoryInfo(name, Shape.cast(layout).width, depth))
            # The front end's spikes, a word a cycle, into layer 1's event list, one a
            # cycle: the walk is held back while the queue could overflow (`CONV_QUEUE`).
            # A word's tag is the first weight word of its lane 0's row j = o H'W' + pos.
            m.submodules.conv_emitter = conv_emitter = Emitter(lanes, layers[0].words, CONV_QUEUE)

        # -- registers -----------------------------------------------------------------------
        busy, done, learn = Signal(), Signal(), Signal()
        label = Signal(address_bits(spec.classes))
        prediction = Signal(address_bits(spec.classes))
        lfsr = Signal(spec.lfsr_width, init=spec.seed)
        in_learning = Signal()  # counters' phase
        t = Signal(range(steps + 1))
        # t = 0, a register beside t: it selects every lane's current and neuron reset, so it
        # must not be a comparator of t fanned out to all of them.
        first_step = Signal(init=1)
        block = Signal(range(geo.max_blocks + 1))
        event = Signal(range(geo.max_width + 1))
        event_next = Signal(range(geo.max_width + 2))  # event + 1, while a layer accumulates
        n_ev_in = Signal(range(n_list + 1))
        # The events layer 1 accumulates this step: the input list's, or none once an
        # `intensity` current is integrated; a register, so that no step compare reaches
        # the event counters.
        n_acc_in = Signal(range(n_list + 1))
        n_hidden = [
            Signal(range(geo.max_width + 1), name=f"n_events{n}")
            for n in range(max(2, len(hidden_events)))
        ]
        emit_list = Signal(range(max(2, len(hidden_events))))  # where emitted neurons go
        step_parity = Signal()  # t mod 2: which of its lists the output layer's input fills
        # The output layer's issuer (with hidden layers): the step it accumulates, its list,
        # whether that list is complete, and where it is in it.
        out_active, out_list, out_complete, out_first = Signal(), Signal(), Signal(), Signal()
        out_block = Signal(range(geo.max_blocks + 1))
        out_event = Signal(range(geo.max_width + 1))
        out_event_next = Signal(range(geo.max_width + 2))
        emit_values = Signal(data.ArrayLayout(signed(spec.act_bits), lanes))  # hard-tanh
        m.d.comb += self.done.eq(done)

        def real_count(k: int, b: Signal) -> object:
            """Lanes of block `b` of layer k that hold a neuron (the last may be padded)."""
            last_block = layers[k].blocks - 1
            return Mux(b == last_block, layers[k].real_lanes(last_block), lanes)

        def real_mask(k: int, b: Signal) -> object:
            last_block = layers[k].blocks - 1
            tail = (1 << layers[k].real_lanes(last_block)) - 1
            return Mux(b == last_block, tail, (1 << lanes) - 1)

        # -- bus -----------------------------------------------------------------------------
        bus = self.bus
        b_pending, b_ready, b_we = Signal(), Signal(), Signal()
        b_adr = Signal(mmap.addr_bits)
        b_dat = Signal(DATA_BITS)
        b_word = [Signal(range(layer.words), name=f"b_word{k}") for k, layer in enumerate(layers)]
        b_held = [Signal(name=f"b_held{k}") for k in range(len(layers))]  # a weight is there
        lane_bits = mmap.lane_bits
        # A request waits for the slowest weight memory's word: two cycles more where banked.
        waits = [b_pending] + [Signal(name=f"b_wait{n}") for n in range(bus_latency(geo) - 2)]
        m.d.sync += [bus.ack.eq(0), bus.err.eq(0), b_pending.eq(0)]
        m.d.sync += [later.eq(now) for now, later in itertools.pairwise(waits)]
        m.d.sync += b_ready.eq(waits[-1])
        request = bus.cyc & bus.stb & ~bus.ack & ~bus.err
        for waiting in [*waits, b_ready]:
            request = request & ~waiting

        # Memory read ports follow the bus address while the core is idle. A request is
        # latched and answered `bus_latency` cycles later, when a weight word has passed the
        # register behind its memory (`words`); the weight word address is latched with it.
        def in_region(adr: Signal, name: str) -> object:
            region = mmap.region(name)
            return adr[region.size_bits :] == region.base >> region.size_bits

        def offset(adr: Signal, name: str) -> Signal:
            return adr[: mmap.region(name).size_bits]

        def weight_fields(adr: Signal, k: int) -> tuple[Value, Value, Value]:
            """(lane, block, row) of an address in layer k's weight region (§5's map)."""
            off, row_at = offset(adr, f"weights{k}"), lane_bits + mmap.block_bits(k)
            return off[:lane_bits], off[lane_bits:row_at], off[row_at:]

        def input_lane(word: Value, lane: Value) -> Value:
            return word[lane] if per_word > 1 else word[0]

        # The input word and the output read by the bus are registered as they arrive, the
        # weight word in `words`: nothing but a register follows a block RAM's slow output
        # (the input's lane is chosen from the word register when the bus is answered).
        asked_in = offset(bus.adr, "inputs")
        m.d.comb += inp_r.addr.eq(asked_in[in_bits:])
        b_input = registered(m, inp_r.data, "b_input")
        asked_out = offset(bus.adr, "outputs")
        m.d.comb += state_r[last].addr.eq(asked_out[lane_bits:])
        out_lane = asked_out[:lane_bits]
        neuron = state_r[last].data[out_lane] if lanes > 1 else state_r[last].data[0]
        b_output = registered(m, Mux(out_lane < lanes, output_of(spec, neuron), 0), "b_output")
        for k in range(len(layers)):
            _, blk, row = weight_fields(bus.adr, k)
            address = times(row, layers[k].blocks) + blk
            m.d.comb += weights_r[k].addr.eq(address)
            with m.If(request):
                m.d.sync += b_word[k].eq(address)
            # Whether the latched address holds a weight, decided while the request waits.
            lane, blk, row = weight_fields(b_adr, k)
            inside = (blk < layers[k].blocks) & (row < layers[k].n_in)
            real = (times(blk, lanes) + lane < layers[k].n_out) & (lane < lanes)
            m.d.sync += b_held[k].eq(inside & real)
        with m.If(request):
            m.d.sync += [
                b_pending.eq(1),
                b_adr.eq(bus.adr),
                b_we.eq(bus.we),
                b_dat.eq(bus.dat_w),
            ]

        read_value = Signal(DATA_BITS)
        write_ok = Signal()
        regs = {name: offset for name, (offset, _, _) in REGISTERS.items()}
        csr_off = offset(b_adr, "csr")
        start = Signal()
        with m.If(b_ready):
            with m.If(in_region(b_adr, "csr")):
                m.d.comb += write_ok.eq(1)
                with m.Switch(csr_off):
                    with m.Case(regs["ident"]):
                        m.d.comb += read_value.eq(IDENT)
                    with m.Case(regs["ctrl"]), m.If(b_we):
                        m.d.comb += [
                            start.eq(b_dat[CTRL_BITS["start"]] & ~busy),
                            counters.clear.eq(b_dat[CTRL_BITS["clear"]]),
                        ]
                        with m.If(b_dat[CTRL_BITS["start"]] & busy):
                            m.d.comb += write_ok.eq(0)
                    with m.Case(regs["status"]):
                        m.d.comb += read_value.eq(Cat(busy, done))  # STATUS_BITS order
                    with m.Case(regs["label"]):
                        m.d.comb += read_value.eq(label)
                        with m.If(b_we):
                            ok = (b_dat < spec.classes) & ~busy
                            m.d.comb += write_ok.eq(ok)
                            with m.If(ok):
                                m.d.sync += label.eq(b_dat)
                    with m.Case(regs["prediction"]):
                        m.d.comb += read_value.eq(prediction)
                    with m.Case(regs["lfsr"]):
                        m.d.comb += read_value.eq(lfsr)
                        with m.If(b_we):
                            value = b_dat[: spec.lfsr_width]
                            ok = (value != 0) & (b_dat >> spec.lfsr_width == 0) & ~busy
                            m.d.comb += write_ok.eq(ok)
                            with m.If(ok):
                                m.d.sync += lfsr.eq(value)
                    with m.Case(regs["spec_hash"]):
                        m.d.comb += read_value.eq(spec_hash(spec))
                    for phase in PHASES:
                        for kind in KINDS:
                            low = counter_address(phase, kind)
                            count = counters.counts[(phase, kind)]
                            with m.Case(low):
                                m.d.comb += read_value.eq(count[:DATA_BITS])
                            with m.Case(low + 1):
                                m.d.comb += read_value.eq(count[DATA_BITS:])
            with m.Elif(in_region(b_adr, "inputs")):
                in_off = offset(b_adr, "inputs")
                in_lane = in_off[:in_bits]
                m.d.comb += [write_ok.eq(~busy), read_value.eq(input_lane(b_input, in_lane))]
                with m.If(b_we & ~busy):
                    m.d.comb += [
                        inp_w.addr.eq(in_off[in_bits:]),
                        inp_w.en.eq(Const(1, per_word) << in_lane),
                    ]
                    for n in range(per_word):
                        m.d.comb += inp_w.data[n].eq(b_dat)
            with m.Elif(in_region(b_adr, "outputs")):
                m.d.comb += [write_ok.eq(~busy & ~b_we), read_value.eq(b_output)]
            for k in range(len(layers)):
                with m.Elif(in_region(b_adr, f"weights{k}")):
                    lane, _, _ = weight_fields(b_adr, k)
                    word = words[k]
                    m.d.comb += [
                        write_ok.eq(~busy),
                        read_value.eq(Mux(b_held[k], word[lane] if lanes > 1 else word[0], 0)),
                    ]
                    with m.If(b_we & ~busy & b_held[k]):
                        m.d.comb += [
                            weights_w[k].addr.eq(b_word[k]),
                            weights_w[k].en.eq(1 << lane),
                        ]
                        for n in range(lanes):
                            m.d.comb += weights_w[k].data[n].eq(b_dat[: spec.weight_bits])
            if spec.conv:
                # A kernel tap: the host writes it, the core only reads its words.
                with m.Elif(in_region(b_adr, "kernels")):
                    off = offset(b_adr, "kernels")
                    lane, word = off[:lane_bits], off[lane_bits:]
                    m.d.comb += write_ok.eq(~busy & b_we)
                    with m.If(b_we & ~busy & (word < cg.kernel_words) & (lane < lanes)):
                        m.d.comb += [
                            fe.kernel_w_addr.eq(word),
                            fe.kernel_w_en.eq(Const(1, lanes) << lane),
                        ]
                        for n in range(lanes):
                            m.d.comb += fe.kernel_w_data[n].eq(b_dat[: spec.kernel_bits])
            m.d.sync += [bus.dat_r.eq(read_value), bus.ack.eq(write_ok), bus.err.eq(~write_ok)]

        # -- datapath units ----------------------------------------------------------------
        macs, neurons, factor_units, updates = [], [], [], []
        hidden_blocks = max((layer.blocks for layer in layers[:last]), default=1)
        m.submodules.emitter = emitter = Emitter(lanes, hidden_blocks)
        for k in range(len(layers)):
            macs.append(MacLanes(spec, k))
            m.submodules[f"mac{k}"] = macs[k]
            neurons.append(LIFLanes(spec, k) if spec.spiking else HardTanhLanes(spec, k))
            m.submodules[f"neurons{k}"] = neurons[k]
            if learning:
                factor_units.append(
                    DRTPFactors(spec, k) if spec.rule == "drtp" else LFPFactors(spec, k)
                )
                m.submodules[f"factors{k}"] = factor_units[k]
                updates.append(UpdateLanes(spec, k))
                m.submodules[f"update{k}"] = updates[k]

        # -- pipeline registers --------------------------------------------------------------
        # ENC, beside the sequencer: P, the word read last cycle is at the memories' outputs;
        # Q, it is registered; H, the head: the word whose events are being appended.
        enc_on = Signal()  # words are left to read
        enc_word = Signal(range(in_words + 1))  # the next one
        p_valid, p_word = Signal(), Signal(range(in_words))
        q_valid, q_word = Signal(), Signal(range(in_words))
        q_x = Signal(data.ArrayLayout(spec.input_bits, per_word))
        h_mask = Signal(per_word)  # the lanes to append
        h_base = Signal(range(max(layers[0].words, in_words)))  # see the head's load below
        h_x = Signal(data.ArrayLayout(spec.input_bits, per_word))  # `intensity`: the inputs
        enc_busy = Signal()
        m.d.comb += enc_busy.eq(enc_on | p_valid | q_valid | h_mask.any())

        pipes = [
            AccPipeline(
                m, k, mac_in(layer), mac_in(layer) + mac.latency + 1, range(geo.max_blocks + 1)
            )
            for k, (layer, mac) in enumerate(zip(layers, macs, strict=True))
        ]
        # PF pipeline: 1 a block's state arrives and enters the factor unit (`pf_valid`);
        # its factors come out, to be written, the unit's latency later (`pf_out`).
        pf_at = 1 + (factor_units[0].latency if learning else 0)
        pf_live = delay_line(m, "pf_live", pf_at)
        pf_blocks = delay_line(m, "pf_block", pf_at, range(geo.max_blocks + 1))
        pf_valid, pf_block = pf_live[1], pf_blocks[1]
        pf_out, pf_out_block = pf_live[pf_at], pf_blocks[pf_at]
        pf_filling = Cat(*(pf_live[s] for s in range(1, pf_at))).any()  # before the output
        active_blocks = Signal(geo.max_blocks)
        proj_lfsr = Signal(spec.lfsr_width)

        # The rows a layer's learning scan steps through: its presynaptic neurons, or behind
        # the front end, layer 1's in the order of the conv state words (§5), L a word,
        # padding lanes included (they never fire, so are never visited).
        def scan_rows(k: int) -> int:
            return cg.state_words * lanes if k == 0 and spec.conv else layers[k].n_in

        def scanned(k: int) -> bool:
            """Layer k's activity is read from a state memory word by word (`scan_addr`)."""
            return k > 0 or spec.conv

        def listed(k: int) -> bool:
            """Layer k walks the input event list: under `intensity` it holds exactly the
            active input rows, in order, so layer 1 need not scan every input."""
            return not scanned(k) and spec.encoding == "intensity"

        rows_max = max(geo.max_width, scan_rows(0))
        row, row_block = Signal(range(rows_max + 1)), Signal(range(rows_max + 1))
        row_lane = Signal(range(lanes))
        row_hot = Signal(lanes, init=1)  # 1 << row_lane: picks a lane's fired bit by AND-OR
        # Row i is the walk's last (last but one): flags set as the row moves, so that the
        # walk's decision waits on no comparison of `row`.
        row_last, row_penult = Signal(), Signal()
        row_channel = Signal(range(cg.blocks * lanes)) if spec.conv else None  # o of row
        # Who reads each state memory (the PF and SCAN/VISIT phases, PRED) and, for the
        # activity scan, which word: registers, set by the sequencer's transitions, so that
        # the memories' wide address nets follow registers through a multiplexer only.
        pf_phase = [Signal(name=f"pf_phase{k}") for k in range(len(layers))]
        scan_phase = {k: Signal(name=f"scan_phase{k}") for k in range(len(layers)) if scanned(k)}
        pred_phase = Signal()
        scanning = [Signal(name=f"scanning{k}") for k in range(len(layers))]
        scan_to_visit = [Signal(name=f"scan{k}_to_visit") for k in range(len(layers))]
        scan_to_drain = [Signal(name=f"scan{k}_to_drain") for k in range(len(layers))]
        visit_phase = [Signal(name=f"visit_phase{k}") for k in range(len(layers))]
        leave_to_drain = [Signal(name=f"leave{k}_to_drain") for k in range(len(layers))]
        leave_to_scan = [Signal(name=f"leave{k}_to_scan") for k in range(len(layers))]
        scan_addr = Signal(range(geo.max_width + 1))
        max_words = max(layer.words for layer in layers)
        row_base = Signal(range(max_words + 1))  # row · blocks: the row's first weight word
        activity = Signal(signed(max(layer.activity_bits for layer in layers)))
        next_block = Signal(range(geo.max_blocks))  # the lowest block of the row to visit
        rest = Signal(geo.max_blocks)  # the row's blocks to visit after it
        row_ends = Signal()  # `next_block` is the row's last
        sum_bits = spec.weight_bits + geo.factor_bits + geo.max_width.bit_length() + 2
        row_sum = Signal(signed(sum_bits))

        # VISIT pipeline: 1 the word is read; WORD, the memory's latency later, it arrived
        # and is registered (`words`), and enters the update lanes with its factors; WRITE,
        # the lanes' latency later, it is written back. LFP: a row's reward to the layer
        # below is written SENT, two clocks after its last word. Per stage a record of the
        # visit, and per layer whether it holds one: a layer is drained when none does.
        def visit_stages(k: int) -> tuple[int, int, int]:
            """Layer k's WORD, WRITE and SENT stages."""
            word_at = 1 + layers[k].weight_latency
            write_at = word_at + (updates[k].latency if learning else 0)
            return word_at, write_at, write_at + (2 if spec.rule == "lfp" else 0)

        sent_at = max(visit_stages(k)[2] for k in range(len(layers)))
        visit_layout = data.StructLayout(
            {
                "word": range(max_words),
                "block": range(geo.max_blocks + 1),
                "row": range(geo.max_width + 1),
                "row_block": range(geo.max_width + 1),
                "row_lane": range(lanes),
                "activity": signed(len(activity)),
                "last": 1,  # the row's last visited word
            }
        )
        vis, visiting = {}, []
        if learning:  # the inference-only core visits nothing
            vis = delay_line(m, "visit", sent_at, visit_layout)
            visiting = [
                delay_line(m, f"visiting{k}_", visit_stages(k)[2]) for k in range(len(layers))
            ]

        act_lane = Signal(range(per_word))  # layer 1's activity: the input's lane
        # The list entry the listed walk takes next (entry `event`), read a cycle ahead:
        # the row base it gives leaves a register, not the list's block RAM.
        listed_next = Signal(event0, name="listed_next")
        x_listed = listed_next.x
        listed_activity = times(x_listed, steps) if spec.spiking else x_listed

        def activity_of(k: int, ahead: int = 0) -> tuple[Value, Value]:
            """A_k,i of the row whose activity data arrived this cycle (§2): row i, or i + 1
            while visiting row i; and whether it is nonzero. A scanned word's lanes are tested
            each before the lane is chosen, and the walk's decision picks its lane's bit by
            the one-hot `row_hot`, an AND-OR rather than a select decoded from `row_lane`."""
            if not scanned(k):
                if spec.encoding == "spikes":
                    a = input_lane(cnt_r.data, act_lane)
                else:
                    x = input_lane(inp_r.data, act_lane)
                    a = times(x, steps) if spec.spiking else x
                return a, a != 0
            if k == 0:  # behind the front end: its neurons' spike counts
                word, value = fe.counts, lambda n: n
                nonzero = Signal(lanes, name=f"activity_nonzero{k}_{ahead}")
                m.d.comb += nonzero.eq(Cat(*(value(word[n]) != 0 for n in range(lanes))))
            else:
                word, value = state_r[k - 1].data, functools.partial(output_of, spec)
                nonzero = fired_r[k - 1].data
            if lanes == 1:
                return value(word[0]), nonzero[0]
            lane = Signal(range(lanes), name=f"activity_lane{k}_{ahead}")
            m.d.comb += lane.eq(lane_of(ahead))
            return value(word[lane]), (nonzero & row_hot.rotate_left(ahead % lanes)).any()

        def lane_of(ahead: int) -> Value:
            """The lane of row i + `ahead` in its state word."""
            step = ahead % lanes
            if step == 0:
                return row_lane
            return Mux(wraps(step), row_lane + step - lanes, row_lane + step)

        def block_of(ahead: int) -> Value:
            """The state word holding row i + `ahead`."""
            step = ahead % lanes
            return row_block + ahead // lanes + (wraps(step) if step else 0)

        def wraps(step: int) -> Value:
            """Row i + `step` (0 < step < L) lies in the next state word: row i's lane is
            one of the last `step`."""
            return row_hot[lanes - step :].any()

        def activity_addr(k: int, ahead: int) -> list:
            """Layer 1: point the activity read at input i + `ahead` (ahead ≤ 2)."""
            if scanned(k):
                return []  # `scan_addr`, set a cycle ahead by `activity_next`
            ports = [inp_r] + ([cnt_r] if spec.encoding == "spikes" else [])
            at = row + ahead
            m.d.sync += act_lane.eq(at[:in_bits])  # to pick the input from the word read
            return [port.addr.eq(at[in_bits:]) for port in ports]

        def activity_next(k: int, ahead: int, further: Value | None = None) -> list:
            """Layers above 1: next cycle the activity read is of row i + `ahead` (of the row
            as it is now), or of the row after that where `further`."""
            if not scanned(k):
                return []
            target = (
                block_of(ahead)
                if further is None
                else Mux(further, block_of(ahead + 1), block_of(ahead))
            )
            return [scan_addr.eq(target)]

        def move_row(k: int, by: int) -> None:
            m.d.sync += [row.eq(row + by), row_block.eq(block_of(by)), row_lane.eq(lane_of(by))]
            m.d.sync += [
                row_hot.eq(row_hot.rotate_left(by % lanes)),
                row_last.eq(row == scan_rows(k) - 1 - by),
                row_penult.eq(row == scan_rows(k) - 2 - by),
            ]
            if k > 0 or not spec.conv:
                m.d.sync += row_base.eq(row_base + by * layers[k].blocks)
                return
            # Behind the front end row j = o H'W' + pos moves to the next channel o, or past
            # the last (padding included) to channel 0 of the next position.
            b1, positions, width = layers[0].blocks, cg.rows * cg.cols, cg.blocks * lanes
            channel, step = row_channel + by, by * positions * b1
            for wraps in range(1, by // width + 2):
                wrapped = row_channel + by >= wraps * width
                channel = Mux(wrapped, row_channel + by - wraps * width, channel)
                step = Mux(wrapped, ((by - wraps * width) * positions + wraps) * b1, step)
            m.d.sync += [row_channel.eq(channel), row_base.eq(row_base + step)]

        def advance_row(k: int) -> None:
            """Move to the next presynaptic row, or drain the layer after the last one."""
            with m.If(row_last):
                m.d.comb += scan_to_drain[k].eq(1)
            with m.Else():
                move_row(k, 1)
                m.d.sync += activity_next(k, 2)

        def visit_blocks(blocks: Value) -> list:
            """Next cycle visit `blocks`, lowest first. What follows the lowest is kept apart
            (`rest`), so the visits read its flags from a register, behind no borrow chain."""
            return [
                next_block.eq(first_set(blocks)[1]),
                rest.eq(blocks & (blocks - 1)[: len(blocks)]),
                row_ends.eq(~several(blocks)),
            ]

        def visit_row() -> list:
            """Start visiting a row: every block with a post factor."""
            return visit_blocks(active_blocks)

        def take_listed_row() -> None:
            """Layer 1 under `intensity`: visit the input row of the next list entry, and
            read the one after it."""
            m.d.comb += ev_in_r.addr.eq(event + 2)
            m.d.sync += [
                row_base.eq(listed_next.base),
                activity.eq(listed_activity),
                listed_next.eq(ev_in_r.data),
                event.eq(event + 1),
                *visit_row(),
            ]

        def enter_layer(k: int) -> None:
            m.d.sync += [block.eq(0), event.eq(0), event_next.eq(1)]
            if k < last - 1:  # the output layer's lists are emptied as it finishes them
                m.d.sync += n_hidden[k % 2].eq(0)
            m.next = f"ACC_{k}"

        def start_scan() -> None:
            m.d.sync += [enc_on.eq(1), enc_word.eq(0), n_ev_in.eq(0), n_acc_in.eq(0)]
            if spec.conv:
                m.d.sync += fe.rewind.eq(1)  # the front end's input events start anew

        def begin_step() -> None:
            """The step's first phase: the front end's, or ACC_0."""
            if spec.conv:
                m.next = "FRONT"
            else:
                enter_layer(0)

        def enter_step() -> None:
            if spec.conv:  # layer 1's events are this step's conv spikes
                m.d.sync += [n_ev_in.eq(0), n_acc_in.eq(0)]
            if spec.encoding == "spikes":
                start_scan()
            begin_step()

        def enter_learning(k: int) -> None:
            m.d.sync += [block.eq(0), active_blocks.eq(0), pf_phase[k].eq(1)]
            if spec.rule == "drtp" and spec.projection == "lfsr" and k < last:
                seeds = [projection_seed(spec, k, c) for c in range(spec.classes)]
                with m.Switch(label):
                    for c, seed in enumerate(seeds):
                        with m.Case(c):
                            m.d.sync += proj_lfsr.eq(seed)
            m.next = f"PF_{k}"

        def issue(
            k: int,
            at: tuple[Signal, Signal, Signal],
            n_events: Value,
            complete: Value,
            free: object,
            after_last: object,
            also: Sequence = (),
        ) -> None:
            """One cycle of ACC_k: issue the next event's weight word of the block, or the
            block's end. `at` is the block, event and event + 1 registers; the list never
            runs ahead of the event, so equalities decide, no adder. A block other than the
            first starts only once `free` (None: at once); `after_last` runs as the last
            block closes; `also` is set with each issue."""
            blk, ev, ev_next = at
            word = ev != n_events
            ready = (blk != 0) | complete
            closing = Signal(name=f"closing{k}")
            m.d.comb += closing.eq(ready & (~word | (ev_next == n_events)))
            go = word | ready
            if free is not None:
                go = ((ev != 0) | (blk == 0) | free) & go
            with m.If(go):
                m.d.sync += [
                    pipes[k].word[1].eq(word),
                    pipes[k].end[1].eq(closing),
                    pipes[k].block[1].eq(blk),
                    *also,
                ]
                with m.If(closing):
                    m.d.sync += [ev.eq(0), ev_next.eq(1), blk.eq(blk + 1)]
                    if after_last is not None:
                        with m.If(blk == layers[k].blocks - 1):
                            after_last()
                with m.Else():
                    m.d.sync += [ev.eq(ev_next), ev_next.eq(ev_next + 1)]

        def hand_over() -> None:
            """The output layer's step goes to its issuer (HANDOVER)."""
            m.next = "HANDOVER"

        def drained(k: int) -> object:
            """Layer k has no word, block end or neuron update in flight."""
            return ~pipes[k].busy()

        def next_step() -> None:
            m.d.sync += [t.eq(t + 1), first_step.eq(0), step_parity.eq(~step_parity)]
            if spec.encoding == "intensity" and spec.spiking and not spec.conv:
                m.d.sync += n_acc_in.eq(0)  # layer 1's current integrated once
            enter_step()

        def to_prediction() -> None:
            m.d.sync += [t.eq(t + 1), first_step.eq(0), block.eq(0), pred_class.eq(0)]
            m.d.sync += pred_phase.eq(1)
            m.next = "PRED_ADDR"

        key_bits = geo.count_bits + 1 if spec.spiking else spec.act_bits
        pred_lane = Signal(range(lanes))
        pred_class = Signal(range(spec.classes))
        # PRED_LANE reads a class's output (`key`) and its window current into `cand_*`; the
        # next cycle compares them with the best so far. Both as one unsigned rank (the
        # sign bits flipped, the key above the current): one comparator orders them.
        cand_valid, cand_class = Signal(), Signal(range(spec.classes))
        cand_rank, best_rank = Signal(key_bits + spec.acc_bits), Signal(key_bits + spec.acc_bits)
        cand_key = Cat(cand_rank[spec.acc_bits : -1], ~cand_rank[-1]).as_signed()
        gated = spec.learn_gate == "margin"

        def rank(key: Signal, z: Signal) -> Value:
            return Cat(z[:-1], ~z[-1], key[:-1], ~key[-1])

        def margin_gate(key: Value, cls: Value, predicted: Value) -> Value:
            """Contract §5's gate at the last class: predicted right and the label's output
            ahead of the runner-up's by `gate_margin`. The label's output and the runner-up
            are tracked as the prediction pass streams the classes."""
            label_key, other_key = Signal(signed(key_bits)), Signal(signed(key_bits))
            first_other = Mux(label == 0, cls == 1, cls == 0)
            label_now = Mux(cls == label, key, label_key)
            other_now = Mux((cls != label) & (first_other | (key > other_key)), key, other_key)
            m.d.sync += [label_key.eq(label_now), other_key.eq(other_now)]
            return (predicted == label) & (label_now - other_now >= spec.gate_margin)

        # PRED, stage 2: the class read is compared with the best so far.
        m.d.sync += cand_valid.eq(0)  # set by PRED_LANE
        better = Signal()
        m.d.comb += better.eq((cand_class == 0) | (cand_rank > best_rank))
        steps_in = learn
        with m.If(cand_valid):
            with m.If(better):
                m.d.sync += [best_rank.eq(cand_rank), prediction.eq(cand_class)]
            if gated:
                predicted = Mux(better, cand_class, prediction)
                steps_in = learn & ~margin_gate(cand_key, cand_class, predicted)

        # -- the sequencer -------------------------------------------------------------------
        for pipe in pipes:
            m.d.sync += [pipe.word[1].eq(0), pipe.end[1].eq(0)]  # set by ACC_k when it issues
        if spec.conv:
            m.d.sync += fe.rewind.eq(0)  # set by `start_scan`
        with m.FSM(name="sequencer") as fsm:
            with m.State("IDLE"), m.If(start):
                m.d.sync += [
                    busy.eq(1),
                    done.eq(0),
                    learn.eq(b_dat[CTRL_BITS["learn"]] & int(learning)),
                    in_learning.eq(0),
                    t.eq(0),
                    first_step.eq(1),
                    step_parity.eq(0),
                ]
                start_scan()
                begin_step()

            if spec.conv:
                # The step's input events are in the front end (its currents final): its
                # neurons update, and their spikes fill layer 1's list behind ACC_0.
                with m.State("FRONT"), m.If(~enc_busy & ~fe.busy):
                    clear = (t == steps - 1) if spec.encoding == "intensity" else 1
                    m.d.comb += [fe.step.eq(1), fe.first.eq(first_step), fe.clear.eq(clear)]
                    enter_layer(0)

            for k, layer in enumerate(layers):
                if k == last and last > 0:
                    continue  # the output layer issues on its own, below
                ev_r = ev_in_r if k == 0 else hidden_events[(k - 1) % 2][0]
                n_events = n_acc_in if k == 0 else n_hidden[(k - 1) % 2]
                # A layer's input list is complete once the scan, or the layer below, has
                # nothing in flight and nothing pending; until then block 0 streams the events
                # already written.
                if k > 0:
                    complete = drained(k - 1) & emitter.empty
                elif spec.conv:
                    complete = ~fe.busy & conv_emitter.empty
                else:
                    complete = ~enc_busy
                # Hard-tanh keeps the values of one block to append: a block of a layer that
                # appends starts once the previous one is appended.
                free = 1 if spec.spiking or k == last else drained(k) & emitter.empty
                if k < last - 1:
                    after_last = functools.partial(enter_layer, k + 1)
                elif k == last - 1:
                    after_last = hand_over
                else:
                    after_last = None
                with m.State(f"ACC_{k}"):
                    m.d.comb += ev_r.addr.eq(event)  # read whether or not it issues
                    with m.If(block < layer.blocks):
                        issue(k, (block, event, event_next), n_events, complete, free, after_last)
                    if k == last:  # a core without hidden layers: ACC_0 ends the step
                        with m.Elif(drained(k)):
                            with m.If(t == steps - 1):
                                to_prediction()
                            with m.Else():
                                next_step()

            if last > 0:
                # The output layer's step t goes to its issuer as soon as the issuer has
                # finished step t − 1; once the list below is complete, the layers below go
                # on with step t + 1 (filling the other list) while it accumulates step t.
                with m.State("HANDOVER"), m.If(~out_active):
                    m.d.sync += [
                        out_active.eq(1),
                        out_list.eq(step_parity),
                        out_complete.eq(0),
                        out_block.eq(0),
                        out_event.eq(0),
                        out_event_next.eq(1),
                        out_first.eq(first_step),
                    ]
                    m.next = "PASS"
                with m.State("PASS"), m.If(drained(last - 1) & emitter.empty):
                    m.d.sync += out_complete.eq(1)
                    with m.If(t == steps - 1):
                        m.next = "FINISH"
                    with m.Else():
                        next_step()
                with m.State("FINISH"), m.If(~out_active & drained(last)):
                    to_prediction()

            with m.State("PRED_ADDR"):
                m.d.sync += pred_lane.eq(0)
                m.next = "PRED_LANE"
            with m.State("PRED_LANE"):
                word = state_r[last].data
                neuron = word[pred_lane] if lanes > 1 else word[0]
                key, z = Signal(signed(key_bits)), Signal(signed(spec.acc_bits))
                m.d.comb += [
                    key.eq(output_of(spec, neuron)),
                    z.eq(saturate(neuron.z, spec.acc_bits)),
                ]
                m.d.sync += [
                    cand_valid.eq(1),
                    cand_class.eq(pred_class),
                    cand_rank.eq(rank(key, z)),
                    pred_class.eq(pred_class + 1),
                ]
                with m.If(pred_class == spec.classes - 1):
                    m.d.sync += pred_phase.eq(0)
                    m.next = "PRED_LAST"
                with m.Elif(pred_lane == lanes - 1):
                    m.d.sync += block.eq(block + 1)
                    m.next = "PRED_ADDR"
                with m.Else():
                    m.d.sync += pred_lane.eq(pred_lane + 1)
            with m.State("PRED_LAST"):  # the last class is compared
                m.d.sync += in_learning.eq(steps_in)
                if learning:
                    with m.If(steps_in):
                        enter_learning(last)
                    with m.Else():
                        m.next = "DONE"
                else:
                    m.next = "DONE"

            for k in reversed(range(len(layers)) if learning else ()):
                layer = layers[k]
                with m.State(f"PF_{k}"):
                    if listed(k):
                        m.d.comb += ev_in_r.addr.eq(0)  # the walk's first entry
                    if k in projection_r:
                        m.d.comb += projection_r[k].addr.eq(times(label, layer.blocks) + block)
                    if spec.rule == "lfp" and k < last:
                        m.d.comb += rew_r.addr.eq(block)
                    m.d.sync += pf_valid.eq(block < layer.blocks)
                    with m.If(block < layer.blocks):
                        m.d.sync += [block.eq(block + 1), pf_block.eq(block)]
                    with m.Elif(~pf_filling):  # the last block's factors are written this cycle
                        m.d.sync += pf_phase[k].eq(0)
                        if scanned(k):  # the state of the layer below is scanned from row 0
                            m.d.sync += [scan_phase[k].eq(1), scan_addr.eq(0)]
                        m.next = f"SCAN_INIT_{k}"
                with m.State(f"SCAN_INIT_{k}"):
                    if listed(k):
                        m.d.comb += ev_in_r.addr.eq(1)
                        m.d.sync += [listed_next.eq(ev_in_r.data), event.eq(0)]
                    else:
                        m.d.comb += activity_addr(k, ahead=0)
                    if spec.rule == "lfp" and k > 0:
                        m.d.sync += valid.eq(0)
                    # A layer without post factors (or active rows) visits nothing: skip it.
                    idle = active_blocks == 0
                    if listed(k):
                        idle |= n_ev_in == 0
                    with m.If(idle):
                        m.next = f"DRAIN_{k}"
                    with m.Else():
                        m.d.sync += [*activity_next(k, 1), scanning[k].eq(1)]
                        m.next = f"SCAN_{k}"
                with m.State(f"SCAN_{k}"):  # its datapath runs under `scanning`
                    if listed(k):
                        m.next = f"VISIT_{k}"
                    else:
                        with m.If(scan_to_visit[k]):
                            m.next = f"VISIT_{k}"
                        with m.Elif(scan_to_drain[k]):
                            m.next = f"DRAIN_{k}"
                with m.State(f"VISIT_{k}"):  # its datapath runs under `visit_phase`
                    with m.If(leave_to_drain[k]):
                        m.next = f"DRAIN_{k}"
                    with m.Elif(leave_to_scan[k]):
                        m.next = f"SCAN_{k}"
                # The layer's last visits are written back before the next layer (or the
                # host) reads what they write.
                with m.State(f"DRAIN_{k}"), m.If(~Cat(*visiting[k].values()).any()):
                    if scanned(k):
                        m.d.sync += scan_phase[k].eq(0)
                    if k > 0:
                        enter_learning(k - 1)
                    else:
                        m.next = "DONE"

            with m.State("DONE"):
                m.d.sync += [busy.eq(0), done.eq(1)]
                m.next = "IDLE"

        # The output layer's issuer: ACC of the output layer, as in the sequencer's ACC_k, on
        # registers of its own, so that it runs beside the sequencer's next step.
        if last > 0:
            out_lists = [port for port, _ in hidden_events[outer:]]
            n_out = Mux(out_list, n_hidden[outer + 1], n_hidden[outer])
            m.d.comb += [port.addr.eq(out_event) for port in out_lists]
            first_at = mac_in(layers[last]) + macs[last].latency
            out_firsts = delay_line(m, f"acc{last}_first", first_at)

            def finish() -> None:
                m.d.sync += out_active.eq(0)
                with m.If(out_list):  # its list is read: empty it
                    m.d.sync += n_hidden[outer + 1].eq(0)
                with m.Else():
                    m.d.sync += n_hidden[outer].eq(0)

            with m.If(out_active):
                at = (out_block, out_event, out_event_next)
                also = [out_firsts[1].eq(out_first)]
                issue(last, at, n_out, out_complete, None, finish, also)

        # The learning walk's datapath (PF's row reset, SCAN_k, VISIT_k) under phase flags
        # of its own rather than the decode of the sequencer's state: the row registers'
        # enables are the sequencer's longest paths.
        if learning:
            with m.If(Cat(*pf_phase).any()):  # the next layer's walk starts at row 0
                m.d.sync += [row.eq(0), row_block.eq(0), row_lane.eq(0), row_base.eq(0)]
                m.d.sync += row_hot.eq(1)
                if spec.conv:
                    m.d.sync += row_channel.eq(0)
            for k, phase in enumerate(pf_phase):
                with m.If(phase):
                    m.d.sync += [row_last.eq(scan_rows(k) == 1), row_penult.eq(scan_rows(k) == 2)]
        for k in reversed(range(len(layers)) if learning else ()):
            layer = layers[k]
            with m.If(scanning[k]):
                if listed(k):
                    take_listed_row()
                    m.d.comb += scan_to_visit[k].eq(1)
                else:
                    m.d.comb += activity_addr(k, ahead=1)
                    a, active = activity_of(k)
                    with m.If(active):
                        m.d.comb += scan_to_visit[k].eq(1)
                        m.d.sync += [activity.eq(a), *visit_row()]
                        m.d.sync += activity_next(k, 1, ~several(active_blocks))
                    with m.Else():
                        advance_row(k)
                with m.If(scan_to_visit[k]):
                    m.d.sync += [scanning[k].eq(0), visit_phase[k].eq(1)]
                with m.If(scan_to_drain[k]):
                    m.d.sync += scanning[k].eq(0)
            with m.If(visit_phase[k]):
                m.d.comb += weights_r[k].addr.eq(row_base + next_block)
                m.d.sync += [
                    *visit_blocks(rest),
                    vis[1].word.eq(row_base + next_block),
                    vis[1].block.eq(next_block),
                    vis[1].row.eq(row),
                    vis[1].row_block.eq(row_block),
                    vis[1].row_lane.eq(row_lane),
                    vis[1].activity.eq(activity),
                    vis[1].last.eq(row_ends),
                ]
                # The last word of a row moves on to the next row: the next list entry, or
                # (scan) row i + 1, whose activity arrived: an active row follows without
                # a scan cycle, a silent one is passed over.
                if listed(k):
                    with m.If(~row_ends):
                        m.d.comb += ev_in_r.addr.eq(event + 1)
                    with m.Elif(event == n_ev_in):
                        m.d.comb += leave_to_drain[k].eq(1)
                    with m.Else():
                        take_listed_row()
                else:
                    with m.If(row_ends):
                        m.d.comb += activity_addr(k, ahead=2)
                        a, active = activity_of(k, ahead=1)
                        with m.If(row_last):
                            m.d.comb += leave_to_drain[k].eq(1)
                        with m.Elif(active):
                            move_row(k, 1)
                            m.d.sync += [activity.eq(a), *visit_row()]
                            m.d.sync += activity_next(k, 2, ~several(active_blocks))
                        with m.Elif(row_penult):
                            m.d.comb += leave_to_drain[k].eq(1)
                        with m.Else():
                            move_row(k, 2)
                            m.d.sync += [*activity_next(k, 3), scanning[k].eq(1)]
                            m.d.comb += leave_to_scan[k].eq(1)
                    with m.Else():
                        m.d.comb += activity_addr(k, ahead=1)
                        m.d.sync += activity_next(k, 1, ~several(rest))
                with m.If(leave_to_drain[k] | leave_to_scan[k]):
                    m.d.sync += visit_phase[k].eq(0)

        # The state memories' reads of the sequencer's phases.
        for k in range(len(layers)):
            with m.If(pf_phase[k]):
                m.d.comb += state_r[k].addr.eq(block)
            if k in scan_phase:
                with m.If(scan_phase[k]):
                    addr = state_r[k - 1].addr if k > 0 else fe.count_addr
                    m.d.comb += addr.eq(scan_addr)
        with m.If(pred_phase):
            m.d.comb += state_r[last].addr.eq(block)

        # -- pipeline stages that run behind the sequencer ------------------------------------
        def append_event(port: object, count: Signal, **fields: object) -> None:
            """Write an event's `fields` at the end of an event list and count it."""
            m.d.comb += [port.addr.eq(count), port.en.eq(1)]
            m.d.comb += [getattr(port.data, name).eq(value) for name, value in fields.items()]
            m.d.sync += count.eq(count + 1)

        def append_input_event(base: Value, x: object) -> None:
            """An event into layer 1's list, counted for ACC_0 of this step."""
            append_event(ev_in_w, n_ev_in, base=base, x=x)
            m.d.sync += n_acc_in.eq(n_acc_in + 1)

        # ENC: Q's events are its nonzero inputs (`intensity`) or the spikes of the
        # sigma-delta encoder run on its lanes (`spikes`, the word's state written back as
        # it leaves Q). The head appends its lowest event a cycle and takes Q's word as it
        # appends its last; while Q waits behind a head with more, the scan stalls and the
        # read ports hold their data. A word without events leaves Q without stalling.
        in_tail = n0 - (in_words - 1) * per_word  # inputs of the last word
        q_last = q_word == in_words - 1
        q_real = Mux(q_last, (1 << in_tail) - 1, (1 << per_word) - 1)
        q_mask = Signal(per_word)
        stall = Signal()
        # The head's lowest event leaves when its consumer takes it: the list at once, the
        # front end when `ready`. The head is free for Q's word once it has nothing left.
        accept = fe.ready if spec.conv else 1
        head_free = ~several(h_mask)
        if spec.conv:
            head_free &= accept | ~h_mask.any()
        m.d.comb += stall.eq(q_valid & q_mask.any() & ~head_free)
        leaves = q_valid & ~stall
        if spec.encoding == "intensity":
            m.d.comb += q_mask.eq(Cat(*(q_x[n] != 0 for n in range(per_word))) & q_real)
        else:
            full = 1 << spec.input_bits
            q_phase = Signal(phase_shape)
            q_cnt = Signal(data.ArrayLayout(geo.count_bits, per_word))
            with m.If(~stall):
                m.d.sync += [q_phase.eq(phase_r.data), q_cnt.eq(cnt_r.data)]
            spikes = []
            for n in range(per_word):
                phase = Signal(spec.input_bits + 2, name=f"enc_phase{n}")
                m.d.comb += phase.eq(Mux(first_step, full >> 1, q_phase[n]) + q_x[n])
                spikes.append(phase >= full)
                m.d.comb += [
                    phase_w.data[n].eq(phase - Mux(spikes[n], full, 0)),
                    cnt_w.data[n].eq(Mux(first_step, 0, q_cnt[n]) + spikes[n]),
                ]
            m.d.comb += q_mask.eq(Cat(*spikes) & q_real)
            with m.If(leaves):
                m.d.comb += [
                    phase_w.addr.eq(q_word),
                    phase_w.en.eq(1),
                    cnt_w.addr.eq(q_word),
                    cnt_w.en.eq(1),
                ]
            real = Mux(q_last, in_tail, per_word)
            counts.add(leaves, "inference", adds=real, compares=real)
        ports = [inp_r] + ([phase_r, cnt_r] if spec.encoding == "spikes" else [])
        m.d.comb += [port.en.eq(~stall) for port in ports]
        with m.If(~stall):
            m.d.sync += [
                p_valid.eq(enc_on),
                p_word.eq(enc_word),
                q_valid.eq(p_valid),
                q_word.eq(p_word),
                q_x.eq(inp_r.data),
            ]
            with m.If(enc_on):
                m.d.comb += [port.addr.eq(enc_word) for port in ports]
                m.d.sync += [enc_word.eq(enc_word + 1), enc_on.eq(enc_word != in_words - 1)]
        _, h_lane = first_set(h_mask)
        with m.If(h_mask.any()):
            x = 1 if spec.encoding == "spikes" else input_lane(h_x, h_lane)
            if spec.conv:  # the event enters the front end, by its input row
                m.d.comb += [
                    fe.start.eq(1),
                    fe.row.eq(times(h_base, per_word) + h_lane),
                    fe.value.eq(x),
                ]
            else:
                lane_base = Array(n * layers[0].blocks for n in range(per_word))[h_lane]
                append_input_event(h_base + lane_base, x)
        with m.If(leaves & head_free):
            # The head's word: behind the front end its index, else its first input's row
            # base in layer 1's weights.
            word_base = q_word if spec.conv else times(q_word, per_word * layers[0].blocks)
            m.d.sync += [h_mask.eq(q_mask), h_base.eq(word_base)]
            if spec.encoding == "intensity":
                m.d.sync += h_x.eq(q_x)
        with m.Elif(accept) if spec.conv else m.Else():
            m.d.sync += h_mask.eq(h_mask & (h_mask - 1)[:per_word])

        pushes = []  # per hidden layer: (update lands, its fired lanes, its block)
        for k, layer in enumerate(layers):
            if k == 0:
                ev_data = ev_in_r.data
            elif k < last:
                ev_data = hidden_events[(k - 1) % 2][0].data
            else:  # the issuer's list, unchanged until its last entry read has arrived
                ev_data = Signal(event_layout, name=f"acc{k}_event")
                m.d.comb += ev_data.eq(Mux(out_list, out_lists[1].data, out_lists[0].data))
            pipe = pipes[k]
            at_mac = mac_in(layer)
            upd_at = at_mac + macs[k].latency
            x = delay_line(m, f"acc{k}_x", at_mac, signed(layer.event_bits), first=2)
            m.d.sync += x[2].eq(ev_data.x)
            # ACC stage 1: the event arrived; its row's first word address. 2: address its
            # word, which arrives the memory's latency later and is registered (`words`) for
            # the MAC in `at_mac`.
            acc_base = Signal(range(layer.words), name=f"acc{k}_row_base")
            m.d.sync += acc_base.eq(ev_data.base if k == 0 else times(ev_data.row, layer.blocks))
            with m.If(pipe.word[2]):
                m.d.comb += weights_r[k].addr.eq(acc_base + pipe.block[2])
            m.d.comb += [
                macs[k].en.eq(pipe.word[at_mac]),
                macs[k].x.eq(x[at_mac]),
                macs[k].weights.eq(words[k]),
                macs[k].clear.eq(pipe.end[at_mac + 1]),  # the word after a block's end
            ]
            # The block's state is read to arrive with its final sums.
            with m.If(pipe.end[upd_at - 1]):
                m.d.comb += state_r[k].addr.eq(pipe.block[upd_at - 1])
            r = real_count(k, pipe.block[at_mac])
            counts.add(
                pipe.word[at_mac],
                "inference",
                syn_ops=r,
                adds=r,
                mults=r if layer.multi_bit else 0,
                weight_reads=1,
            )
            # UPD: the block's sums are final; they enter the neuron lanes with the block's
            # state while the MAC goes on with the next block. NEU, a cycle later: the lanes'
            # new state is written back and their spikes go to the emitter.
            unit = neurons[k]
            updating, upd_block = pipe.end[upd_at], pipe.block[upd_at]
            neu, neu_block = pipe.end[upd_at + 1], pipe.block[upd_at + 1]
            m.d.comb += unit.real.eq(real_mask(k, upd_block))
            with m.If(neu):
                m.d.comb += [
                    state_w[k].addr.eq(neu_block),
                    state_w[k].data.eq(unit.next),
                    state_w[k].en.eq(1),
                ]
            if k < len(fired_w):  # a cycle after the state word, from registers
                m.d.sync += [
                    fired_w[k].addr.eq(neu_block),
                    fired_w[k].data.eq(unit.fired),
                    fired_w[k].en.eq(neu),
                ]
            r = real_count(k, upd_block)
            if spec.spiking:
                current = Signal(data.ArrayLayout(signed(spec.acc_bits), lanes), name=f"i{k}")
                for n in range(lanes):
                    summed = saturate(macs[k].sums[n], spec.acc_bits)
                    if k == 0 and spec.encoding == "intensity" and not spec.conv:
                        summed = Mux(first_step, summed, state_r[k].data[n].i1)
                    m.d.comb += current[n].eq(summed)
                # The output layer may update step t while the sequencer is at t + 1.
                first = out_firsts[upd_at] if k == last and last > 0 else first_step
                m.d.comb += [
                    unit.state.eq(state_r[k].data),
                    unit.current.eq(current),
                    unit.first.eq(first),
                ]
                counts.add(
                    updating,
                    "inference",
                    state_reads=r,
                    state_writes=r,
                    adds=4 * r,
                    compares=r,
                )
            else:
                m.d.comb += unit.sums.eq(macs[k].sums)
                counts.add(updating, "inference", state_reads=r, state_writes=r, compares=2 * r)
            if k < last:
                fired = unit.spikes if spec.spiking else unit.active
                pushes.append((neu, Mux(neu, fired, 0), Mux(neu, neu_block, 0)))
                with m.If(neu):
                    to = outer + step_parity if k == last - 1 else k % 2
                    m.d.sync += emit_list.eq(to)
                    if not spec.spiking:
                        for n in range(lanes):
                            m.d.sync += emit_values[n].eq(unit.next[n].a)

        # EMIT: append the emitter's neuron to the next layer's list, one per cycle.
        if last > 0:
            m.d.comb += [
                emitter.push.eq(functools.reduce(operator.or_, (p[0] for p in pushes))),
                emitter.fired.eq(functools.reduce(operator.or_, (p[1] for p in pushes))),
                emitter.block.eq(functools.reduce(operator.or_, (p[2] for p in pushes))),
            ]
            with m.If(emitter.valid):
                if spec.spiking:
                    x = 1
                else:
                    x = emit_values[emitter.lane] if lanes > 1 else emit_values[0]
                for n, (_, ev_w) in enumerate(hidden_events):
                    with m.If(emit_list == n):
                        append_event(ev_w, n_hidden[n], row=emitter.neuron, x=x)
        if spec.conv:
            # The front end's spikes: a walk word's fired lanes to the queue, tagged with
            # the row base of its lane 0; one event a cycle to layer 1's list (§3: row
            # j = o H'W' + pos, base j · blocks).
            b1, positions = layers[0].blocks, cg.rows * cg.cols
            m.d.comb += [
                conv_emitter.push.eq(fe.fired_valid),
                conv_emitter.fired.eq(fe.fired),
                conv_emitter.block.eq(times(fe.pos, b1) + times(fe.block, lanes * positions * b1)),
                fe.hold.eq(conv_emitter.queued > CONV_QUEUE - 4),
            ]
            with m.If(conv_emitter.valid):
                lane_base = Array(n * positions * b1 for n in range(lanes))[conv_emitter.lane]
                append_input_event(conv_emitter.tag + lane_base, 1)
            r = cg.real_lanes(fe.block)
            counts.add(
                fe.kernel_read,
                "inference",
                syn_ops=fe.taps,
                adds=fe.taps,
                mults=fe.taps if cg.multi_bit else 0,
                weight_reads=1,
            )
            counts.add(
                fe.fired_valid,
                "inference",
                state_reads=r,
                state_writes=r,
                adds=3 * r,
                compares=r,
            )
        counts.add(cand_valid & (cand_class != 0), "inference", compares=1)
        if gated:
            counts.add(cand_valid & learn, "learning", compares=1)
        counts.add(busy & ~in_learning, "inference", cycles=1)
        counts.add(busy & in_learning, "learning", cycles=1)

        if learning:
            draws = lfsr_states(m, lfsr, spec.lfsr_width, lanes, "round_draw")
            proj_draws = lfsr_states(m, proj_lfsr, spec.lfsr_width, lanes, "proj_draw")
            for k, layer in enumerate(layers):
                # PF stage 2: the block's state arrived; compute and store its post factors.
                unit = factor_units[k]
                live = pf_valid & pf_phase[k]
                r = real_count(k, pf_block)
                m.d.comb += [
                    unit.state.eq(state_r[k].data),
                    unit.label.eq(label),
                    unit.block.eq(pf_block),
                    unit.real.eq(real_mask(k, pf_block)),
                ]
                if spec.rule == "drtp" and k < last:
                    if k in projection_r:
                        m.d.comb += unit.projection.eq(projection_r[k].data)
                        counts.add(live, "learning", proj_reads=1)
                    else:
                        m.d.comb += unit.projection.eq(Cat(*(s[0] for s in proj_draws)))
                        with m.If(live):
                            m.d.sync += proj_lfsr.eq(proj_draws[-1])
                        counts.add(live, "learning", lfsr_draws=r)
                    counts.add(live, "learning", compares=2 * r)
                if spec.rule == "drtp" and k == last:
                    counts.add(live, "learning", adds=r)
                if spec.rule == "lfp":
                    if k < last:
                        m.d.comb += [
                            unit.reward.eq(rew_r.data),
                            unit.valid.eq(valid.word_select(pf_block, lanes)),
                        ]
                    else:
                        counts.add(live, "learning", table_reads=r)
                    counts.add(live, "learning", mults=r, adds=r, table_reads=r)
                counts.add(live, "learning", state_reads=r)
                with m.If(pf_out & pf_phase[k]):
                    m.d.comb += [
                        pf_w.addr.eq(pf_out_block),
                        pf_w.data.eq(unit.factors),
                        pf_w.en.eq(1),
                    ]
                    with m.If(unit.nonzero):
                        m.d.sync += active_blocks.eq(active_blocks | (1 << pf_out_block))
                # The activity scan reads every row once, whether a cycle of its own or the
                # previous row's last visit scans it, or the layer is skipped.
                counts.add(fsm.ongoing(f"SCAN_INIT_{k}"), "learning", state_reads=layer.n_in)

                # VISIT: the record moves on; the factors are read a stage before WORD, to
                # arrive with the word, where both enter the update lanes.
                upd, stages = updates[k], visiting[k]
                word_at, write_at, sent_at = visit_stages(k)
                m.d.sync += stages[1].eq(visit_phase[k])
                with m.If(stages[word_at - 1]):
                    m.d.comb += pf_r.addr.eq(vis[word_at - 1].block)
                live, written = stages[word_at], vis[write_at]
                r = real_count(k, vis[word_at].block)
                m.d.comb += [
                    upd.weights.eq(words[k]),
                    upd.factors.eq(pf_r.data),
                    upd.activity.eq(vis[word_at].activity),
                ]
                for n in range(lanes):
                    m.d.comb += upd.random[n].eq(draws[n])
                if spec.rounding == "stochastic":
                    with m.If(live):
                        m.d.sync += lfsr.eq(draws[-1])
                with m.If(stages[write_at]):
                    m.d.comb += [
                        weights_w[k].addr.eq(written.word),
                        weights_w[k].data.eq(upd.next),
                        weights_w[k].en.eq(real_mask(k, written.block)),
                    ]
                rounding_add = r if spec.rounding != "floor" else 0
                counts.add(
                    live,
                    "learning",
                    syn_ops=r,
                    weight_reads=1,
                    weight_writes=1,
                    lfsr_draws=lanes if spec.rounding == "stochastic" else 0,
                )
                if spec.rule == "drtp":
                    counts.add(
                        live,
                        "learning",
                        mults=r if k == last else 0,
                        adds=r + rounding_add,
                    )
                else:
                    below = k > 0
                    counts.add(
                        live,
                        "learning",
                        mults=2 * r + (r if below else 0),
                        adds=r * (2 if below else 1) + rounding_add,
                    )
                if spec.rule == "lfp" and k > 0:
                    # The row's reward to the layer below: its sum, complete at its last
                    # word, is registered saturated; then its product with the activity;
                    # then the reward is written.
                    total = Signal(signed(sum_bits), name=f"row_sum{k}")
                    row_total = Signal(signed(spec.acc_bits), name=f"row_total{k}")
                    product = Signal(signed(len(activity) + spec.acc_bits), name=f"sent{k}")
                    m.d.comb += total.eq(row_sum + upd.reward_sum)
                    with m.If(stages[write_at]):
                        with m.If(written.last):
                            sent = saturate(total, spec.acc_bits)
                            m.d.sync += [row_sum.eq(0), row_total.eq(sent)]
                        with m.Else():
                            m.d.sync += row_sum.eq(total)
                    m.d.sync += product.eq(vis[write_at + 1].activity * row_total)
                    to = vis[sent_at]
                    with m.If(stages[sent_at] & to.last):
                        reward = saturate(product >> spec.q_frac, spec.reward_bits)
                        m.d.comb += [
                            rew_w.addr.eq(to.row_block),
                            rew_w.en.eq(Const(1, lanes) << to.row_lane),
                        ]
                        for n in range(lanes):
                            m.d.comb += rew_w.data[n].eq(reward)
                        m.d.sync += valid.eq(valid | (Const(1, len(valid)) << to.row))
                    counts.add(stages[write_at] & written.last, "learning", mults=1, state_writes=1)
        counts.drive(m, counters)
        return m
