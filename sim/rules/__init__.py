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
from sim.rules.dual import DualPropagation, DualPropagationT
from sim.rules.fa import FeedbackAlignment
from sim.rules.lfp import LFP
from sim.rules.random_feedback import FRFB, URFB
from sim.rules.rewards import REWARDS
from sim.rules.shallow import Shallow
from sim.rules.snn import SNN_RULES, SpikingRule, make_snn_rule  # spiking networks
from sim.rules.target_prop import DTP, FWDTP

RULES: dict[str, type[LearningRule]] = {
    rule.name: rule
    for rule in (
        Backprop,
        FeedbackAlignment,
        DFA,
        SignDFA,
        DRTP,
        Shallow,
        LFP,
        DualPropagation,
        DualPropagationT,
        FRFB,
        URFB,
        DTP,
        FWDTP,
    )
}


def make_rule(name: str, net: Network, seed: int = 0, **options: object) -> LearningRule:
    """Build the rule called `name` for `net`; its feedback tensors are drawn from `seed`.

    `options` are the rule's own keyword arguments (LFP: `reward`, `epsilon`; each rule's
    `options` names them).
    """
    if name not in RULES:
        raise ConfigError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}")
    try:
        return RULES[name](net, seed=seed, **options)
    except TypeError as error:
        raise ConfigError(f"rule {name!r} does not take options {sorted(options)}") from error


__all__ = [
    "DFA",
    "DRTP",
    "DTP",
    "FRFB",
    "FWDTP",
    "LFP",
    "REWARDS",
    "RULES",
    "SNN_RULES",
    "URFB",
    "Backprop",
    "DirectProjection",
    "DualPropagation",
    "DualPropagationT",
    "FeedbackAlignment",
    "LearningRule",
    "Shallow",
    "SignDFA",
    "SpikingRule",
    "StepContext",
    "StepResult",
    "alignment_angle",
    "backprop_deltas",
    "feedback_to_activation",
    "make_rule",
    "make_snn_rule",
    "output_loss",
]
