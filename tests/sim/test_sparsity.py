"""Sparsity analysis (LFP paper Sec. 4.1, App. A.7.4): Gini closed forms and pruning."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from quant.errors import ConfigError
from sim.analysis import (
    PruneConfig,
    apply_masks,
    canonize,
    gini,
    layer_gini,
    masks_from_scores,
    prune_mask,
    pruning_curve,
    relevance_scores,
)
from sim.models import Network, NetworkConfig

METHODS = ("magnitude_local", "magnitude_global", "relevance")


def _net(topology="FC_4_FC_3", shape=(5,), seed=0, activation="tanh"):
    config = NetworkConfig(
        topology,
        shape,
        hidden_activation=activation,
        output_activation="linear",
        init="torch_default",
    )
    return Network(config, seed=seed)


def _batch(shape=(5,), n=12, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *shape), generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return x, F.one_hot(labels, classes).float(), labels


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _pruned_counts(masks):
    return [int((~m).sum()) for m in masks]


# --- Gini -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_gini_of_equal_magnitudes_is_zero(n):
    assert gini(torch.full((n,), 3.0)) == pytest.approx(0.0, abs=1e-12)
    signs = torch.tensor([(-1.0) ** i for i in range(n)])  # |values| equal, signs not
    assert gini(2.5 * signs) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [1, 2, 5, 64])
def test_gini_of_one_hot_is_one_minus_one_over_n(n):
    """Only c_(N) = ‖c‖₁: G = 1 − 2 · ½ / N = 1 − 1/N."""
    v = torch.zeros(n)
    v[n // 2] = -4.0
    assert gini(v) == pytest.approx(1.0 - 1.0 / n, abs=1e-12)


def test_gini_is_scale_and_sign_invariant_and_accepts_arrays():
    v = torch.randn(50, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    g = gini(v)
    assert 0.0 < g < 1.0
    assert gini(7.3 * v) == pytest.approx(g, abs=1e-12)
    assert gini(-v) == pytest.approx(g, abs=1e-12)
    assert gini(v.view(5, 10)) == pytest.approx(g, abs=1e-12)
    assert gini(v.numpy()) == pytest.approx(g, abs=1e-12)
    assert gini(v.tolist()) == pytest.approx(g, abs=1e-12)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # sorted 1,2,3,4, ‖c‖₁=10: 1 − 2(0.1·3.5 + 0.2·2.5 + 0.3·1.5 + 0.4·0.5)/4 = 0.25
        ([4.0, 1.0, 3.0, 2.0], 0.25),
        # sorted 0,0,1,4, ‖c‖₁=5: 1 − 2(0.2·1.5 + 0.8·0.5)/4 = 0.65 (|Σ|c_i−c_j||/(2N²c̄) too)
        ([-4.0, 1.0, 0.0, 0.0], 0.65),
    ],
)
def test_gini_hand_computed(values, expected):
    assert gini(values) == pytest.approx(expected, abs=1e-12)


def test_gini_all_zero_is_defined_as_zero_and_empty_is_refused():
    assert gini(torch.zeros(6)) == 0.0
    with pytest.raises(ConfigError):
        gini([])


def test_layer_gini_is_gini_of_each_blocks_weights():
    net = _net("FC_6_FC_4_FC_3")
    assert layer_gini(net) == pytest.approx([gini(b.layer.weight) for b in net.blocks])


def test_canonize_folds_batchnorm_into_an_equivalent_layer():
    net = _net("FC_6_BN_FC_3")
    with torch.no_grad():
        norm = net.blocks[0].norm
        norm.running_mean.uniform_(-1, 1, generator=torch.Generator().manual_seed(1))
        norm.running_var.uniform_(0.5, 2, generator=torch.Generator().manual_seed(2))
        norm.weight.uniform_(-2, 2, generator=torch.Generator().manual_seed(3))
        norm.bias.uniform_(-1, 1, generator=torch.Generator().manual_seed(4))
    before = _state(net)
    folded = canonize(net)
    assert folded.blocks[0].norm is None
    x, _, _ = _batch((5,))
    net.eval()
    assert torch.allclose(folded(x), net(x), atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert layer_gini(net)[0] == pytest.approx(gini(folded.blocks[0].layer.weight))
    assert layer_gini(net)[0] != pytest.approx(gini(net.blocks[0].layer.weight))


# --- magnitude pruning ---------------------------------------------------------------------


def test_magnitude_local_prunes_round_fraction_of_each_layer_smallest_first():
    net = _net("FC_4_FC_3")  # layers of 20 and 12 weights
    masks = prune_mask(net, 0.3, "magnitude_local")
    assert _pruned_counts(masks) == [6, 4]  # round(6.0), round(3.6)
    for block, mask in zip(net.blocks, masks, strict=True):
        w = block.layer.weight.detach().abs()
        assert w[~mask].max() <= w[mask].min()


def test_magnitude_global_uses_one_threshold_across_layers():
    net = _net("FC_4_FC_3")
    with torch.no_grad():
        net.blocks[1].layer.weight.mul_(100.0)  # a layer of large weights
    masks = prune_mask(net, 0.3, "magnitude_global")  # round(0.3 · 32) = 10 < 20
    assert _pruned_counts(masks) == [10, 0]
    weights = [b.layer.weight.detach().abs() for b in net.blocks]
    pruned = torch.cat([w[~m] for w, m in zip(weights, masks, strict=True)])
    kept = torch.cat([w[m] for w, m in zip(weights, masks, strict=True)])
    assert pruned.max() <= kept.min()
    # the local criterion, by contrast, takes the same share from every layer
    assert _pruned_counts(prune_mask(net, 0.3, "magnitude_local")) == [6, 4]


def test_ties_are_broken_by_position():
    scores = [torch.ones(2, 3), torch.ones(4)]
    local = masks_from_scores(scores, 0.5, local=True)
    assert local[0].flatten().tolist() == [False, False, False, True, True, True]
    assert local[1].tolist() == [False, False, True, True]
    glob = masks_from_scores(scores, 0.4, local=False)  # round(4.0): the first four
    assert glob[0].flatten().tolist() == [False, False, False, False, True, True]
    assert glob[1].all()


# --- relevance pruning -------------------------------------------------------------------


def test_relevance_scores_are_absolute_summed_lrp_epsilon_relevances():
    """|Σ_n a_i w_ij r_j / stab(z_j)| per weight, computed here by hand (A.7.4, Eq. 8)."""
    net = _net("FC_4_FC_3")
    x, target, _ = _batch(n=6)
    eps = 1e-6
    w1, b1 = net.blocks[0].layer.weight.detach(), net.blocks[0].layer.bias.detach()
    w2, b2 = net.blocks[1].layer.weight.detach(), net.blocks[1].layer.bias.detach()
    z1 = x @ w1.T + b1
    h = torch.tanh(z1)
    o = h @ w2.T + b2

    def stab(z):
        return z + torch.where(z >= 0, 1.0, -1.0) * eps

    s2 = o * (target - torch.softmax(o, 1)) / stab(o)  # softmax-CE reward (Table 2, #3)
    r_h = h * (s2 @ w2)  # Eq. 8: reward of each hidden unit, passed through tanh
    s1 = r_h / stab(z1)
    expected = [(w1 * (s1.T @ x)).abs(), (w2 * (s2.T @ h)).abs()]
    scores = relevance_scores(net, x, target, epsilon=eps, chunk=4)  # sums across chunks
    for mine, ref in zip(scores, expected, strict=True):
        assert torch.allclose(mine, ref, rtol=1e-4, atol=1e-7)


def test_relevance_pruning_follows_relevance_not_magnitude():
    net = _net("FC_4_FC_3")
    with torch.no_grad():
        net.blocks[0].layer.weight[:, 0] = 10.0  # the largest weights of the network ...
    x, target, _ = _batch()
    x[:, 0] = 0.0  # ... carry no signal on the reference batch, so no relevance
    fraction = 4 / 32
    rel = prune_mask(net, fraction, "relevance", x, target)
    assert (~rel[0]).nonzero()[:, 1].tolist() == [0, 0, 0, 0]  # exactly input column 0
    assert rel[1].all()
    mag = prune_mask(net, fraction, "magnitude_global")
    assert mag[0][:, 0].all()  # magnitude keeps them
    # and relevance pruning in general removes the least relevant weights first
    scores = relevance_scores(net, x, target)
    rel = prune_mask(net, 0.5, "relevance", x, target)
    pruned = torch.cat([s[~m] for s, m in zip(scores, rel, strict=True)])
    kept = torch.cat([s[m] for s, m in zip(scores, rel, strict=True)])
    assert pruned.max() <= kept.min()


def test_relevance_needs_a_reference_batch():
    with pytest.raises(ConfigError):
        prune_mask(_net(), 0.5, "relevance")


# --- shared properties -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_fraction_zero_keeps_all_and_fraction_one_zeroes_all_weights(method):
    net = _net("CONV_2_3_1_1_FC_4_FC_3", (1, 6, 6))
    x, target, _ = _batch((1, 6, 6))
    kept = apply_masks(net, prune_mask(net, 0.0, method, x, target))
    for a, b in zip(kept.parameters(), net.parameters(), strict=True):
        assert torch.equal(a, b)
    gone = apply_masks(net, prune_mask(net, 1.0, method, x, target))
    for block, original in zip(gone.blocks, net.blocks, strict=True):
        assert not block.layer.weight.any()
        assert torch.equal(block.layer.bias, original.layer.bias)  # biases are never pruned


@pytest.mark.parametrize("method", METHODS)
def test_the_callers_network_is_untouched(method):
    net = _net("FC_6_BN_FC_3")
    x, target, _ = _batch()
    before = _state(net)
    masks = prune_mask(net, 0.5, method, x, target)
    pruned = apply_masks(net, masks)
    pruning_curve(net, lambda m: 0.0, [0.0, 0.5, 1.0], method, x, target)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert not torch.equal(pruned.blocks[0].layer.weight, net.blocks[0].layer.weight)
    same = apply_masks(net, masks, inplace=True)  # only when asked
    assert same is net
    assert torch.equal(net.blocks[0].layer.weight, pruned.blocks[0].layer.weight)


def test_conv_only_layers_follow_the_paper_setting():
    net = _net("CONV_2_3_1_1_FC_4_FC_3", (1, 6, 6))
    masks = prune_mask(net, 1.0, "magnitude_global", config=PruneConfig(layers="conv"))
    assert not masks[0].any()
    assert masks[1].all() and masks[2].all()


def test_invalid_arguments_are_refused():
    net = _net()
    with pytest.raises(ConfigError):
        prune_mask(net, 1.5, "magnitude_local")
    with pytest.raises(ConfigError):
        prune_mask(net, -0.1, "magnitude_global")
    with pytest.raises(ConfigError):
        prune_mask(net, 0.5, "random")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        PruneConfig(layers="fc")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        apply_masks(net, [torch.ones(2, 2, dtype=torch.bool)])


# --- pruning curve -----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_pruning_curve_is_nested_and_starts_at_the_unpruned_error(method):
    net = _net("FC_8_FC_3")
    x, target, labels = _batch(n=40)

    def error(model):
        with torch.no_grad():
            return float((model(x).argmax(1) != labels).float().mean())

    seen = []

    def evaluate_fn(model):
        seen.append([b.layer.weight == 0 for b in model.blocks])
        return error(model)

    fractions = [0.0, 0.1, 0.25, 0.5, 0.8, 1.0]
    curve = pruning_curve(net, evaluate_fn, fractions, method, x, target)
    assert [f for f, _ in curve] == fractions
    assert curve[0][1] == error(net)
    total = sum(b.layer.weight.numel() for b in net.blocks)  # 40 + 24
    counts = [sum(int(z.sum()) for z in zeros) for zeros in seen]
    if method == "magnitude_local":
        expected = [sum(math.floor(f * n + 0.5) for n in (40, 24)) for f in fractions]
    else:
        expected = [math.floor(f * total + 0.5) for f in fractions]
    assert counts == expected
    assert counts == sorted(counts)
    for smaller, larger in itertools.pairwise(seen):  # pruned sets are nested
        for a, b in zip(smaller, larger, strict=True):
            assert not (a & ~b).any()
    assert curve[-1][1] == error(apply_masks(net, [torch.zeros_like(m) for m in seen[0]]))
