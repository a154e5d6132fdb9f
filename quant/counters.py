"""Operation and memory-access counters of the learning core (contract §8).

The kinds and phases are part of the contract: the golden model and the RTL's hardware
counters count the same events, and the energy model prices them.
"""

from dataclasses import dataclass, field

PHASES: tuple[str, ...] = ("inference", "learning")
KINDS: tuple[str, ...] = (
    "syn_ops",
    "mults",
    "adds",
    "compares",
    "weight_reads",
    "weight_writes",
    "state_reads",
    "state_writes",
    "proj_reads",
    "table_reads",
    "lfsr_draws",
    "cycles",
)


@dataclass
class Counters:
    """Event counts by phase and kind; plain Python ints (they grow past 2^31)."""

    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {phase: dict.fromkeys(KINDS, 0) for phase in PHASES}
    )

    def add(self, phase: str, **kinds: int) -> None:
        table = self.counts[phase]
        for kind, value in kinds.items():
            table[kind] += int(value)

    def total(self, kind: str) -> int:
        return sum(self.counts[phase][kind] for phase in PHASES)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {phase: dict(kinds) for phase, kinds in self.counts.items()}

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, int]]) -> "Counters":
        counters = cls()
        for phase in PHASES:
            counters.add(phase, **data.get(phase, {}))
        return counters
