"""EMIT: the neurons a layer fired, handed to the next layer's event list one per cycle."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.arith import first_set, several, times


class Emitter(wiring.Component):
    """Takes a block's fired lanes (spikes or nonzero activations) as its neurons update, and
    gives back one neuron per cycle, lowest first.

    Blocks update in increasing order and one layer's neurons are emitted before the next
    layer fires, so a queue of fired words in arrival order is already in neuron order: only
    the word at its head needs a priority encoder, over L lanes instead of a layer. The
    arriving word is registered; when nothing is waiting it is emitted from that register
    in the cycle it lands, so the register costs no cycle.

    A layer's blocks never outnumber its queue (`depth`, by default `blocks`). A source that
    pushes faster (a word a cycle) holds back while `queued` words wait; `tag` is the head
    word's block, for sources whose neuron is not `block · L + lane`."""

    def __init__(self, lanes: int, blocks: int, depth: int | None = None) -> None:
        self._lanes, self._blocks, self._depth = lanes, blocks, depth or blocks
        super().__init__(
            {
                "push": In(1),
                "fired": In(lanes),
                "block": In(range(blocks)),
                "valid": Out(1),
                "neuron": Out(range(blocks * lanes)),
                "lane": Out(range(lanes)),
                "tag": Out(range(blocks)),
                "empty": Out(1),
                "queued": Out(range(self._depth + 1)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lanes, blocks, depth = self._lanes, self._blocks, self._depth
        arrived, arrived_block, landed = Signal(lanes), Signal(range(blocks)), Signal()
        m.d.sync += [
            arrived.eq(Mux(self.push, self.fired, 0)),
            arrived_block.eq(self.block),
            landed.eq(self.push & self.fired.any()),
        ]

        # The head word (what is left of it) and the words waiting behind it, oldest first;
        # words wait only behind a nonempty head. `landed`, `held` and `waiting` say which
        # of them hold a neuron, registered beside them.
        head, head_block, held = Signal(lanes), Signal(range(blocks)), Signal()
        words = Array(Signal(lanes, name=f"word{n}") for n in range(depth))
        word_blocks = Array(Signal(range(blocks), name=f"word_block{n}") for n in range(depth))
        read, write = Signal(range(depth)), Signal(range(depth))
        count, waiting = Signal(range(depth + 1)), Signal()

        word = Mux(held, head, arrived)
        block = Mux(held, head_block, arrived_block)
        _, lane = first_set(word)
        rest, more = Signal(lanes), Signal()  # the word less its lowest lane; not empty
        m.d.comb += [
            rest.eq(word & (word - 1)[:lanes]),
            more.eq(Mux(held, several(head), several(arrived))),
        ]
        if lanes & (lanes - 1) == 0:  # block · L + lane is a concatenation
            neuron = Cat(lane[: (lanes - 1).bit_length()], block)
        else:
            neuron = times(block, lanes) + lane
        m.d.comb += [
            self.valid.eq(held | landed),
            self.lane.eq(lane),
            self.neuron.eq(neuron),
            self.tag.eq(block),
            self.empty.eq(~held & ~landed),
            self.queued.eq(count),
        ]

        def wrap(index: Signal) -> object:
            return Mux(index == depth - 1, 0, index + 1)

        take = ~more & waiting  # the head is done: the oldest waiting word follows
        queue = landed & held & (more | waiting)  # the arrival waits its turn
        with m.If(more):
            m.d.sync += [head.eq(rest), head_block.eq(block)]
        with m.Elif(waiting):
            m.d.sync += [head.eq(words[read]), head_block.eq(word_blocks[read])]
            m.d.sync += read.eq(wrap(read))
        with m.Elif(held):  # the head is done and nothing waits: the arrival (if any) is next
            m.d.sync += [head.eq(arrived), head_block.eq(arrived_block)]
        with m.Else():
            m.d.sync += head.eq(0)
        with m.If(queue):
            m.d.sync += [
                words[write].eq(arrived),
                word_blocks[write].eq(arrived_block),
                write.eq(wrap(write)),
            ]
        m.d.sync += [
            count.eq(count + queue - take),
            waiting.eq(Mux(queue, 1, waiting & ~(take & (count == 1)))),
            held.eq(more | waiting | (held & landed)),
        ]
        return m
