"""Feedback alignment: `δa_k = B_{k+1}ᵀ δz_{k+1}` with fixed random `B` shaped like `W`.

Lillicrap et al., 2016; DRTP paper Fig. 1B. `B_{k+1}` is He-uniform, like the forward
weights, and never changes.
"""

import torch
from torch import Tensor, nn

from sim.models.network import Network
from sim.rules.base import LearningRule, StepContext, feedback_to_activation


class FeedbackAlignment(LearningRule):
    name = "fa"

    def build_feedback(self, net: Network, generator: torch.Generator) -> None:
        for k, block in enumerate(net.blocks):
            if k == 0:
                continue
            matrix = torch.empty_like(block.weight)
            nn.init.kaiming_uniform_(matrix, generator=generator)
            self.register_buffer(f"B{k}", matrix)

    def feedback(self, k: int) -> Tensor:
        """The fixed matrix that replaces `W_k` on the way back."""
        return self.get_buffer(f"B{k}")

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor:
        return feedback_to_activation(
            self.network, ctx.traces, k, ctx.delta_z[k + 1], self.feedback(k + 1)
        )
