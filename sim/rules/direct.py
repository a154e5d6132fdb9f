"""Rules that project an output-side vector straight to each hidden layer.

Each hidden block k owns a fixed random `B_k` of shape `[C, *shape(a_k)]` (for a
convolutional block one projection per unit of every output feature map, applied before
pooling), He-uniform like the forward weights. The projected vector is what tells the
rules apart:

- DFA (Nøkland, 2016; DRTP paper Fig. 1C): `δa_k = B_kᵀ (y_K − y*)`
- sDFA (DRTP paper Sec. 2.1): `δa_k = B_kᵀ sign(y_K − y*)`
- DRTP (DRTP paper Algorithm 1): `δa_k = −B_kᵀ y*`. With a one-hot target this is the
  selection of row `c*` of `B_k`: no multiplication, no dependence on the output, so the
  update of block k is available as soon as block k has computed (no update locking).
"""

import torch
from torch import Tensor, nn

from sim.models.network import Network
from sim.rules.base import LearningRule, StepContext


class DirectProjection(LearningRule):
    """Shared machinery: one fixed projection per hidden block."""

    def build_feedback(self, net: Network, generator: torch.Generator) -> None:
        classes = net.num_outputs
        for k, shape in enumerate(net.hook_shapes[:-1]):
            matrix = torch.empty((classes, *shape))
            nn.init.kaiming_uniform_(matrix, generator=generator)
            self.register_buffer(f"B{k}", matrix)

    def projection(self, k: int) -> Tensor:
        """`B_k` as a `[C, units]` matrix."""
        matrix = self.get_buffer(f"B{k}")
        return matrix.reshape(matrix.shape[0], -1)

    def project(self, k: int, vector: Tensor, ctx: StepContext) -> Tensor:
        signal = vector @ self.projection(k) / ctx.batch_size
        return signal.reshape(ctx.traces[k].a.shape)


class DFA(DirectProjection):
    name = "dfa"

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor:
        return self.project(k, ctx.error, ctx)


class SignDFA(DirectProjection):
    name = "sdfa"

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor:
        return self.project(k, torch.sign(ctx.error), ctx)


class DRTP(DirectProjection):
    name = "drtp"

    def hidden_signal(self, k: int, ctx: StepContext) -> Tensor:
        return self.project(k, -ctx.target, ctx)
