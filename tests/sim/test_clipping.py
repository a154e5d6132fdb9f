import torch
from torch import nn

from sim.clipping import adaptive_clip_


def test_units_over_the_limit_are_scaled_to_it_and_others_untouched():
    w = nn.Parameter(torch.tensor([[3.0, 4.0], [0.6, 0.8]]))  # row norms 5 and 1
    w.grad = torch.tensor([[0.0, 1.0], [3.0, 4.0]])  # row norms 1 and 5
    adaptive_clip_([w], clip=0.5)
    assert torch.allclose(w.grad[0], torch.tensor([0.0, 1.0]))  # 1 <= 0.5 * 5: kept
    assert torch.allclose(w.grad[1], torch.tensor([0.3, 0.4]))  # 5 -> 0.5 * 1, same direction


def test_conv_channels_biases_and_eps_floor():
    conv = nn.Parameter(torch.ones(2, 1, 2, 2))  # channel norms 2
    conv.grad = torch.full((2, 1, 2, 2), 10.0)  # channel norms 20
    bias = nn.Parameter(torch.zeros(3))  # zero weights: the floor ϵ = 1e-3 applies
    bias.grad = torch.tensor([1.0, -1.0, 0.0])
    adaptive_clip_([conv, bias], clip=0.1)
    assert torch.allclose(conv.grad.flatten(1).norm(dim=1), torch.tensor([0.2, 0.2]))
    assert torch.allclose(bias.grad, torch.tensor([1e-4, -1e-4, 0.0]))
