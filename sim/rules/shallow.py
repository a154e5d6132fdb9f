"""Shallow learning: only the output layer learns; hidden layers keep their random init.

The lower bound every feedback-free rule must beat (DRTP paper, Table 1).
"""

from torch import Tensor

from sim.rules.base import LearningRule, StepContext


class Shallow(LearningRule):
    name = "shallow"

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor | None:
        return None
