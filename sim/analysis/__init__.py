"""Analyses of trained networks: weight sparsity and prunability (LFP paper, Sec. 4.1)."""

from sim.analysis.sparsity import (
    METHODS,
    PruneConfig,
    apply_masks,
    canonize,
    criterion_scores,
    gini,
    layer_gini,
    masks_from_scores,
    prune_mask,
    pruning_curve,
    relevance_scores,
)

__all__ = [
    "METHODS",
    "PruneConfig",
    "apply_masks",
    "canonize",
    "criterion_scores",
    "gini",
    "layer_gini",
    "masks_from_scores",
    "prune_mask",
    "pruning_curve",
    "relevance_scores",
]
