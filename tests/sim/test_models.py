import pytest
import torch

from quant.errors import ConfigError
from sim.models import LayerSpec, Network, NetworkConfig, format_topology, parse_topology
from sim.models.snn import SNNConfig


def test_parse_fc_and_conv_topologies():
    assert parse_topology("FC_500_FC_10") == (LayerSpec("fc", 500), LayerSpec("fc", 10))
    layers = parse_topology("CONV_32_5_1_2_FC_1000_FC_10")
    assert layers[0] == LayerSpec("conv", 32, kernel=5, stride=1, padding=2)
    assert format_topology(layers) == "CONV_32_5_1_2_FC_1000_FC_10"


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("FC_x_FC_10", "integer units at token 2"),
        ("FC_500_DENSE_10", "token 3 is 'DENSE'"),
        ("CONV_32_5_1", "integer padding"),
        ("FC_10_CONV_3_3_1_1_FC_10", "CONV layers must come before FC"),
        ("FC_10_CONV_3_3_1_1", "CONV layers must come before FC"),
        ("FC_0_FC_10", "width must be >= 1"),
        ("", "token 1"),
        ("FC_10_BN", "output layer takes no BN or SKIP"),
        ("CONV_4_3_1_1_SKIP_FC_10", "SKIP is supported on FC layers only"),
    ],
)
def test_malformed_topology_names_the_problem(text, phrase):
    with pytest.raises(ConfigError, match=phrase):
        parse_topology(text)


def test_modifiers_round_trip_and_build():
    layers = parse_topology("FC_6_BN_FC_6_BN_SKIP_FC_3")
    assert layers[1] == LayerSpec("fc", 6, batchnorm=True, skip=True)
    assert format_topology(layers) == "FC_6_BN_FC_6_BN_SKIP_FC_3"
    net = Network(NetworkConfig("FC_6_BN_FC_6_BN_SKIP_FC_3", (4,)))
    assert isinstance(net.blocks[0].norm, torch.nn.BatchNorm1d) and net.blocks[1].skip
    x = torch.rand(5, 4)
    traces = net.trace(x)
    assert torch.allclose(traces[1].out, traces[1].a + traces[0].out)


def test_skip_needs_matching_width():
    with pytest.raises(ConfigError, match="must be 7 wide"):
        Network(NetworkConfig("FC_6_FC_7_SKIP_FC_3", (4,)))


def test_conv_network_shapes_and_pooling():
    net = Network(NetworkConfig("CONV_32_5_1_2_FC_1000_FC_10", (1, 28, 28)))
    assert net.hook_shapes == ((32, 28, 28), (1000,), (10,))
    assert net.blocks[1].layer.in_features == 32 * 14 * 14
    out = net(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert bool(((out > 0) & (out < 1)).all())  # sigmoid output


def test_fixed_conv_kernels_do_not_require_grad():
    net = Network(NetworkConfig("CONV_4_3_1_1_FC_10", (1, 8, 8), conv_trainable=False))
    assert not any(p.requires_grad for p in net.blocks[0].parameters())
    assert all(p.requires_grad for p in net.blocks[1].parameters())


def test_he_uniform_bounds_and_seed_determinism():
    a = Network(NetworkConfig("FC_200_FC_10", (50,)), seed=3)
    b = Network(NetworkConfig("FC_200_FC_10", (50,)), seed=3)
    c = Network(NetworkConfig("FC_200_FC_10", (50,)), seed=4)
    w = a.blocks[0].weight.detach()
    bound = (6 / 50) ** 0.5
    assert float(w.abs().max()) <= bound
    assert float(w.abs().max()) > 0.9 * bound
    assert torch.equal(w, b.blocks[0].weight)
    assert not torch.equal(w, c.blocks[0].weight)
    assert torch.count_nonzero(a.blocks[0].layer.bias) == 0


def test_zero_init():
    net = Network(NetworkConfig("FC_5_FC_3", (4,), init="zeros"))
    assert all(torch.count_nonzero(p) == 0 for p in net.parameters())


def test_trace_matches_forward_and_detaches_blocks():
    net = Network(NetworkConfig("CONV_3_3_1_1_FC_7_FC_4", (1, 8, 8)), seed=1)
    x = torch.rand(5, 1, 8, 8)
    traces = net.trace(x)
    assert torch.allclose(traces[-1].out, net(x))
    assert all(t.inp.is_leaf and t.inp.requires_grad for t in traces)


def test_dropout_only_in_trace_with_generator():
    net = Network(NetworkConfig("FC_50_FC_4", (20,), dropout=0.5), seed=0)
    x = torch.rand(8, 20)
    plain = net.trace(x)[0].x
    dropped = net.trace(x, torch.Generator().manual_seed(0))[0].x
    assert torch.equal(plain, x)
    zeros = dropped == 0
    assert 0.3 < zeros.float().mean() < 0.7
    assert torch.allclose(dropped[~zeros], 2 * x[~zeros])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"dropout": 1.0}, "dropout"),
        ({"hidden_activation": "swish"}, "hidden_activation"),
        ({"init": "normal"}, "init"),
        ({"input_shape": (0,)}, "input_shape"),
    ],
)
def test_network_config_validation_names_field(kwargs, field):
    base = {"topology": "FC_5_FC_3", "input_shape": (4,)}
    with pytest.raises(ConfigError, match=field):
        NetworkConfig(**{**base, **kwargs})


def test_conv_too_deep_for_input_is_refused():
    with pytest.raises(ConfigError, match="too small for 2x2 pooling"):
        Network(NetworkConfig("CONV_4_3_1_0_CONV_4_3_1_0_FC_10", (1, 8, 8)))


def test_parse_locally_connected_topology():
    layers = parse_topology("LC_4_3_2_1_FC_10")
    assert layers[0] == LayerSpec("lc", 4, kernel=3, stride=2, padding=1)
    assert format_topology(layers) == "LC_4_3_2_1_FC_10"
    with pytest.raises(ConfigError, match="LC layers must come before FC"):
        parse_topology("FC_10_LC_3_3_1_1_FC_10")
    with pytest.raises(ConfigError, match="lc layer needs kernel >= 1"):
        LayerSpec("lc", 4, kernel=0)


def test_locally_connected_with_equal_kernels_is_the_convolution():
    lc_net = Network(NetworkConfig("LC_3_3_2_1_FC_5_FC_4", (2, 9, 9)))
    conv_net = Network(NetworkConfig("CONV_3_3_2_1_FC_5_FC_4", (2, 9, 9)))
    lc, conv = lc_net.blocks[0].layer, conv_net.blocks[0].layer
    assert lc_net.hook_shapes == conv_net.hook_shapes == ((3, 5, 5), (5,), (4,))
    assert lc.weight.shape == (3 * 25, 2, 3, 3)
    bound = (6 / (2 * 3 * 3)) ** 0.5  # He-uniform with the convolution's fan-in
    assert 0.9 * bound < float(lc.weight.detach().abs().max()) <= bound
    with torch.no_grad():
        lc.weight.copy_(conv.weight.repeat_interleave(25, 0))  # row o·L + l: channel o
        lc.bias.copy_(conv.bias[:, None, None].expand(3, 5, 5))
    x = torch.rand(4, 2, 9, 9)
    assert torch.allclose(lc(x), conv(x), atol=1e-6)


def test_locally_connected_weights_are_untied():
    net = Network(NetworkConfig("LC_3_3_1_1_FC_4", (2, 6, 6)))
    lc = net.blocks[0].layer
    lc(torch.rand(2, 2, 6, 6))[:, 1, 2, 4].sum().backward()  # one output unit
    touched = lc.weight.grad.flatten(1).abs().sum(1).nonzero().flatten().tolist()
    assert touched == [1 * 36 + 2 * 6 + 4]
    assert torch.count_nonzero(lc.bias.grad) == 1


def test_locally_connected_needs_an_image_and_no_spikes():
    with pytest.raises(ConfigError, match="LC needs"):
        Network(NetworkConfig("LC_3_3_1_1_FC_4", (36,)))
    with pytest.raises(ConfigError, match="no LC layers"):
        SNNConfig("LC_3_3_1_1_FC_4", (1, 6, 6))
