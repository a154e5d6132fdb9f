"""Backpropagation: `δa_k = W_{k+1}ᵀ δz_{k+1}` (Rumelhart et al., 1986; DRTP paper Fig. 1A)."""

from torch import Tensor

from sim.models.network import BlockTrace
from sim.rules.base import LearningRule, StepContext, feedback_to_activation


class Backprop(LearningRule):
    name = "bp"

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor:
        weight = self.network.blocks[k + 1].weight.detach()
        return feedback_to_activation(self.network, ctx.traces, k, ctx.delta_z[k + 1], weight)

    def reference_deltas(self, traces: list[BlockTrace], ctx: StepContext) -> list[Tensor]:
        """This rule's own signals are BP's: no second backward chain needed."""
        return [ctx.delta_z[k] for k in range(len(traces))]
