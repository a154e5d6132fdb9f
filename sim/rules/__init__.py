"""Learning rules behind one interface (`LearningRule`), selectable by name."""

from quant.errors import ConfigError
from sim.models.network import Network
from sim.rules.base import (
    LearningRule,
    StepContext,
    StepResult,
    alignment_angle,
    backprop_deltas,
    feedback_to_activation,
    output_loss,
)
from sim.rules.bp import Backprop
from sim.rules.direct import DFA, DRTP, DirectProjection, SignDFA
from sim.rules.fa import FeedbackAlignment
from sim.rules.shallow import Shallow

RULES: dict[str, type[LearningRule]] = {
    rule.name: rule for rule in (Backprop, FeedbackAlignment, DFA, SignDFA, DRTP, Shallow)
}


def make_rule(name: str, net: Network, seed: int = 0) -> LearningRule:
    """Build the rule called `name` for `net`; its feedback tensors are drawn from `seed`."""
    if name not in RULES:
        raise ConfigError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}")
    return RULES[name](net, seed=seed)


__all__ = [
    "DFA",
    "DRTP",
    "RULES",
    "Backprop",
    "DirectProjection",
    "FeedbackAlignment",
    "LearningRule",
    "Shallow",
    "SignDFA",
    "StepContext",
    "StepResult",
    "alignment_angle",
    "backprop_deltas",
    "feedback_to_activation",
    "make_rule",
    "output_loss",
]
