"""Energy of the learning core: the contract's counters priced by a per-operation table.

Every counter kind (contract §8) is priced as one operation of the width the spec gives it:
an add or multiply from the table's width entries, or an SRAM access whose energy follows
the size of the memory it hits (log-log interpolation between the table's array sizes,
scaled by the word width). The model covers the datapath and the memory arrays the
counters see; clock tree, control, leakage and the event-list and fired-lane memories (a
few bits beside each state access) are not priced, and the report says so.
"""

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quant.counters import KINDS, PHASES
from quant.errors import PlasticoreError
from quant.spec import CoreSpec
from rtl.core import MemoryInfo
from rtl.geometry import Geometry

DEFAULT_TABLE = Path(__file__).parent / "tables" / "horowitz_45nm.toml"
ENERGY_UNITS = {"fJ": 1e-3, "pJ": 1.0, "nJ": 1e3}
AREA_UNITS = {"um2": 1.0, "mm2": 1e6}

# Priced apart from the contract's kind that counts it (`GoldenCore.kernel_reads`).
KERNEL_READS = "kernel_reads"
# The unit of the core each priced counter kind belongs to; `syn_ops` is a metric whose
# additions and multiplications are counted as `adds`/`mults`, `cycles` is time.
UNIT_OF_KIND: dict[str, str] = {
    "adds": "arithmetic",
    "mults": "arithmetic",
    "compares": "arithmetic",
    "lfsr_draws": "LFSRs",
    "weight_reads": "weight memory",
    "weight_writes": "weight memory",
    KERNEL_READS: "kernel memory",
    "state_reads": "neuron-state memory",
    "state_writes": "neuron-state memory",
    "proj_reads": "projection ROM",
    "table_reads": "LFP tables",
}


class TableError(PlasticoreError):
    """An energy table is malformed; the message names the table and the problem."""


@dataclass(frozen=True)
class EnergyTable:
    """Per-operation energies (pJ) and areas (µm²) of one technology node."""

    name: str
    node_nm: float
    source: str
    add: tuple[tuple[int, float], ...]  # (operand bits, pJ), ascending
    mult: tuple[tuple[int, float], ...]
    sram: tuple[tuple[int, float], ...]  # (array bytes, pJ per access of sram_word_bits)
    sram_word_bits: int
    dram: float  # pJ per access of dram_word_bits
    dram_word_bits: int
    sram_bit_area: float  # µm² per SRAM bit, periphery included
    transistor_area: float  # µm² per transistor of a generic CMOS netlist

    def op(self, kind: str, bits: int) -> float:
        """An add or multiply of `bits`-wide operands: the smallest entry that holds them;
        beyond the widest entry, adds scale linearly and multiplies quadratically."""
        entries = self.add if kind == "add" else self.mult
        for width, energy in entries:
            if bits <= width:
                return energy
        width, energy = entries[-1]
        return energy * (bits / width) ** (1 if kind == "add" else 2)

    def sram_access(self, size_bytes: float, word_bits: int) -> float:
        """One access of `word_bits` to an SRAM of `size_bytes`: log-log interpolation
        between the table's sizes (extrapolated with the nearest segment's slope)."""
        points = self.sram
        if len(points) == 1:
            per_word = points[0][1]
        else:
            size = max(size_bytes, 1.0)
            i = 0
            while i < len(points) - 2 and size > points[i + 1][0]:
                i += 1
            (s0, e0), (s1, e1) = points[i], points[i + 1]
            slope = math.log(e1 / e0) / math.log(s1 / s0)
            per_word = e0 * (size / s0) ** slope
        return per_word * word_bits / self.sram_word_bits


def _number(value: object, where: str, origin: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TableError(f"{origin}: {where} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise TableError(f"{origin}: {where} must be positive, got {value}")
    return float(value)


def _section(data: Mapping, name: str, origin: str) -> Mapping:
    section = data.get(name)
    if not isinstance(section, Mapping):
        raise TableError(f"{origin}: missing section [{name}]")
    return section


def _widths(section: Mapping, name: str, origin: str, scale: float) -> tuple:
    entries = []
    for key, value in section.items():
        if key == "word_bits" or key == "access":
            continue
        if not str(key).isdigit():
            raise TableError(f"{origin}: [{name}] keys are sizes in bits or bytes, got {key!r}")
        entries.append((int(key), scale * _number(value, f"[{name}] {key}", origin)))
    if not entries:
        raise TableError(f"{origin}: [{name}] has no entries")
    return tuple(sorted(entries))


def parse_table(data: Mapping, origin: str) -> EnergyTable:
    """Validate a table's TOML content; `origin` names it in error messages."""
    known = {"table", "add", "mult", "sram", "dram", "area"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TableError(f"{origin}: unknown section(s) {unknown}; known: {sorted(known)}")
    head = _section(data, "table", origin)
    e_unit, a_unit = head.get("energy_unit"), head.get("area_unit")
    if e_unit not in ENERGY_UNITS:
        raise TableError(
            f"{origin}: energy_unit must be one of {sorted(ENERGY_UNITS)}, got {e_unit!r}"
        )
    if a_unit not in AREA_UNITS:
        raise TableError(f"{origin}: area_unit must be one of {sorted(AREA_UNITS)}, got {a_unit!r}")
    e_scale, a_scale = ENERGY_UNITS[e_unit], AREA_UNITS[a_unit]
    sram, dram, area = (_section(data, s, origin) for s in ("sram", "dram", "area"))
    for key in ("sram_bit", "transistor"):
        if key not in area:
            raise TableError(f"{origin}: [area] needs {key!r}")
    if "access" not in dram:
        raise TableError(f"{origin}: [dram] needs 'access'")
    return EnergyTable(
        name=str(head.get("name", origin)),
        node_nm=_number(head.get("node_nm"), "[table] node_nm", origin),
        source=str(head.get("source", "")),
        add=_widths(_section(data, "add", origin), "add", origin, e_scale),
        mult=_widths(_section(data, "mult", origin), "mult", origin, e_scale),
        sram=_widths(sram, "sram", origin, e_scale),
        sram_word_bits=int(_number(sram.get("word_bits"), "[sram] word_bits", origin)),
        dram=e_scale * _number(dram["access"], "[dram] access", origin),
        dram_word_bits=int(_number(dram.get("word_bits"), "[dram] word_bits", origin)),
        sram_bit_area=a_scale * _number(area["sram_bit"], "[area] sram_bit", origin),
        transistor_area=a_scale * _number(area["transistor"], "[area] transistor", origin),
    )


def load_table(path: str | Path | None = None) -> EnergyTable:
    """The table at `path`, or the shipped 45 nm default."""
    path = Path(path) if path is not None else DEFAULT_TABLE
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as error:
        raise TableError(f"energy table {path} does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise TableError(f"energy table {path} is not valid TOML: {error}") from error
    return parse_table(data, str(path))


@dataclass(frozen=True)
class Price:
    """The energy of one counted event and what it is priced as."""

    pj: float
    what: str


def prices(
    spec: CoreSpec, table: EnergyTable, mems: tuple[MemoryInfo, ...]
) -> dict[str, dict[str, Price]]:
    """pJ per event of every priced kind, per phase. A memory access is priced for the
    largest memory of its kind (the counters do not say which layer's memory it hit), a
    banked layer's banks as one array, the front end's neuron state as a state memory; the
    state counters count neurons, so a state access is one neuron's share of a word."""
    geo = Geometry(spec)

    def largest(*kinds: str) -> MemoryInfo | None:
        arrays: dict[str, list[MemoryInfo]] = {}
        for m in mems:
            if m.kind in kinds:
                arrays.setdefault(m.array, []).append(m)
        found = [
            MemoryInfo(name, banks[0].width, sum(bank.depth for bank in banks))
            for name, banks in arrays.items()
        ]
        return max(found, key=lambda m: m.bits) if found else None

    def access(*kinds: str, per_neuron: bool = False) -> Price:
        mem = largest(*kinds)
        if mem is None:
            return Price(0.0, f"no {kinds[0]} memory")
        bits = mem.width // spec.lanes if per_neuron else mem.width
        energy = table.sram_access(mem.bits / 8, bits)
        return Price(energy, f"{bits}-bit access, {mem.bits / 8192:.2f} KiB {mem.name}")

    def op(kind: str, bits: int) -> Price:
        return Price(table.op(kind, bits), f"{bits}-bit {kind}")

    in_bits = max(spec.weight_bits, spec.input_bits, 0 if spec.spiking else spec.act_bits)
    table_bits = spec.reward_bits * 2 * (spec.time_steps + 1) + (spec.acc_bits << spec.recip_bits)
    shared = {
        "weight_reads": access("weights"),
        "weight_writes": access("weights"),
        KERNEL_READS: access("kernels"),
        "state_reads": access("state", "conv_state", per_neuron=True),
        "state_writes": access("state", "conv_state", per_neuron=True),
        "proj_reads": access("projection"),
        "table_reads": Price(
            table.sram_access(table_bits / 8, spec.reward_bits),
            f"{spec.reward_bits}-bit read of {table_bits / 8:.0f} B of tables",
        ),
        "lfsr_draws": op("add", spec.lfsr_width),
    }
    return {
        "inference": {
            **shared,
            "adds": op("add", spec.acc_bits),
            "mults": op("mult", in_bits),
            "compares": op("add", spec.membrane_bits if spec.spiking else spec.acc_bits),
        },
        "learning": {
            **shared,
            "adds": op("add", spec.acc_bits),
            "mults": op("mult", max(spec.weight_bits, geo.factor_bits)),
            "compares": op("add", spec.acc_bits),
        },
    }


@dataclass(frozen=True)
class EnergyReport:
    """Energy per sample by phase and counter kind (pJ), and how each kind was priced."""

    samples: int
    per_kind: dict[str, dict[str, float]]
    prices: dict[str, dict[str, Price]]

    def phase(self, phase: str) -> float:
        return sum(self.per_kind[phase].values())

    @property
    def total(self) -> float:
        return sum(self.phase(p) for p in PHASES)

    def by_unit(self, phase: str) -> dict[str, float]:
        units: dict[str, float] = {}
        for kind, energy in self.per_kind[phase].items():
            units[UNIT_OF_KIND[kind]] = units.get(UNIT_OF_KIND[kind], 0.0) + energy
        return units

    @property
    def learning_overhead(self) -> float:
        """Learning energy as a fraction of inference energy: what learning adds."""
        return self.phase("learning") / self.phase("inference")


def energy(
    spec: CoreSpec,
    counters: Mapping[str, Mapping[str, int]],
    samples: int,
    table: EnergyTable,
    mems: tuple[MemoryInfo, ...],
    kernel_reads: int = 0,
) -> EnergyReport:
    """Price `counters` (contract §8, summed over `samples`) per sample; `kernel_reads` of
    the inference `weight_reads` are the front end's, priced at the kernel memory."""
    if samples < 1:
        raise PlasticoreError(f"energy needs at least one sample, got {samples}")
    if not 0 <= kernel_reads <= counters["inference"]["weight_reads"]:
        raise PlasticoreError(
            f"kernel_reads {kernel_reads} outside the {counters['inference']['weight_reads']} "
            "inference weight reads that count them"
        )
    table_prices = prices(spec, table, mems)
    counts = {phase: {**counters[phase], KERNEL_READS: 0} for phase in PHASES}
    counts["inference"]["weight_reads"] -= kernel_reads
    counts["inference"][KERNEL_READS] = kernel_reads
    per_kind = {
        phase: {
            kind: counts[phase][kind] * table_prices[phase][kind].pj / samples
            for kind in UNIT_OF_KIND
        }
        for phase in PHASES
    }
    return EnergyReport(samples, per_kind, table_prices)


def check_counters(
    golden: Mapping[str, Mapping[str, int]], rtl: Mapping[str, Mapping[str, int]]
) -> list[str]:
    """Differences between the golden model's and the RTL's counters (`cycles` excluded:
    the RTL measures them, the golden model estimates them)."""
    return [
        f"{phase}.{kind}: golden {golden[phase][kind]}, RTL {rtl[phase][kind]}"
        for phase in PHASES
        for kind in KINDS
        if kind != "cycles" and golden[phase][kind] != rtl[phase][kind]
    ]
