"""Published on-chip learning processors, their figures as their papers state them.

Each figure belongs to its chip, node and benchmark; the reports print them beside this
core's own numbers without converting between nodes, so a reader sees what was measured
where. `None` marks a figure the paper does not give in this form.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedChip:
    name: str
    reference: str
    node_nm: int
    rule: str
    area_overhead_pct: float | None  # learning's share of the core's area
    energy_overhead_pct: float | None  # learning's power or training-energy overhead
    energy_per_sample_nj: float | None  # per classification or image
    pj_per_sop: float | None  # energy per synaptic operation
    learning_memory_pct: float | None  # learning state relative to weight memory
    note: str


PUBLISHED: tuple[PublishedChip, ...] = (
    PublishedChip(
        "SPOON",
        "Frenkel, Lefebvre, Bol, ISCAS 2020",
        28,
        "DRTP",
        11.8,
        16.8,
        313.0,
        None,
        None,
        "power overhead of learning; nJ per classification",
    ),
    PublishedChip(
        "Park et al.",
        "Park, Lee, Jeon, JSSC 2020",
        65,
        "direct spike-only feedback",
        None,
        7.5,
        236.0,
        None,
        None,
        "training-energy overhead; nJ per image",
    ),
    PublishedChip(
        "ReckOn",
        "Frenkel, Indiveri, ISSCC 2022",
        28,
        "e-prop",
        None,
        None,
        None,
        5.3,
        0.8,
        "pJ per synaptic operation; learning memory overhead",
    ),
)
