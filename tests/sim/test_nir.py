"""NIR export and import: float SNN and learning core round trips, and what is refused."""

from dataclasses import replace
from pathlib import Path

import nir
import numpy as np
import pytest
import snntorch as snn
import torch

from quant.convert import convert
from quant.errors import ConfigError
from quant.spec import CoreSpec, load_spec
from sim.chip.golden import GoldenCore
from sim.chip.params import initial_weights
from sim.interop.nir_graph import (
    DT,
    RESET,
    SPEC,
    core_from_nir,
    core_to_nir,
    read_nir,
    snn_from_nir,
    snn_to_nir,
    write_nir,
)
from sim.models.snn import SNNConfig, SpikingNetwork

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SNNS = [("FC_12_FC_4", (6,)), ("CONV_3_3_1_1_FC_4", (2, 6, 6))]


def _snn(topology="FC_12_FC_4", shape=(6,), beta=0.9, threshold=0.7, steps=6):
    return SpikingNetwork(SNNConfig(topology, shape, beta, threshold, steps), seed=1)


def _inputs(shape, n=24, seed=0):
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed)) * 3


def _through_file(graph: nir.NIRGraph, tmp_path: Path) -> nir.NIRGraph:
    return read_nir(write_nir(tmp_path / "graph.nir", graph))


@pytest.mark.parametrize(("topology", "shape"), SNNS)
def test_snn_round_trip_through_file_gives_identical_spikes(topology, shape, tmp_path):
    net = _snn(topology, shape)
    back = snn_from_nir(_through_file(snn_to_nir(net), tmp_path))
    assert back.config == replace(net.config, init="zeros")
    x = _inputs(shape)
    with torch.no_grad():
        ours, theirs = net.snntorch_states(x), back.snntorch_states(x)
        counts = net(x)
    assert 0 < counts.sum() < counts.numel() * net.config.time_steps, "needs some spikes"
    for (s, u), (s2, u2) in zip(ours, theirs, strict=True):
        assert torch.equal(s, s2)
        assert torch.equal(u, u2)
    assert torch.equal(counts, back(x))


def test_snn_export_uses_snntorch_parameters_and_max_pool_as_sum_and_threshold():
    graph = snn_to_nir(_snn("CONV_3_3_1_1_FC_4", (2, 6, 6), beta=0.75))
    lif = graph.nodes["lif0"]
    assert isinstance(lif, nir.LIF)
    assert lif.tau.shape == (3, 6, 6)  # per neuron: the conv map before pooling
    np.testing.assert_array_equal(lif.tau, DT / 0.25)
    np.testing.assert_array_equal(lif.r, lif.tau / DT)
    assert lif.metadata[RESET] == "subtract-delayed"
    assert isinstance(graph.nodes["pool0"], nir.SumPool2d)
    assert graph.nodes["pool0_any"].threshold.shape == (3, 3, 3)
    assert graph.edges[:4] == [
        ("input", "conv0"),
        ("conv0", "lif0"),
        ("lif0", "pool0"),
        ("pool0", "pool0_any"),
    ]
    assert isinstance(snn_to_nir(_snn(beta=1.0)).nodes["lif1"], nir.IF)


def _hardtanh() -> CoreSpec:
    return CoreSpec(
        name="tiny_hardtanh",
        inputs=12,
        hidden=(9,),
        classes=4,
        input_bits=6,
        neuron="hardtanh",
        time_steps=1,
        act_shifts=(4, 5),
        lr_shifts=(5, 5),
    )


CORES = [
    load_spec(CONFIGS / "digits.toml"),
    replace(load_spec(CONFIGS / "digits.toml"), name="leaky", leak_shift=3, encoding="spikes"),
    _hardtanh(),
]


@pytest.mark.parametrize("spec", CORES, ids=lambda spec: spec.name)
def test_core_round_trip_through_file_is_exact(spec, tmp_path):
    weights = initial_weights(spec, seed=3)
    back_spec, back_weights = core_from_nir(_through_file(core_to_nir(spec, weights), tmp_path))
    assert back_spec == spec
    for w, w2 in zip(weights, back_weights, strict=True):
        assert w2.dtype == np.int64
        assert np.array_equal(w, w2)
    a, b = GoldenCore(spec, weights), GoldenCore(back_spec, back_weights)
    codes = np.random.default_rng(0).integers(0, 1 << spec.input_bits, (6, spec.inputs))
    for k, x in enumerate(codes):
        assert np.array_equal(
            a.learn(x, k % spec.classes).output, b.learn(x, k % spec.classes).output
        )
    assert all(np.array_equal(w, w2) for w, w2 in zip(a.weights, b.weights, strict=True))


def test_core_graph_means_what_the_core_computes():
    """Read as a float SNN on input codes, the exported core spikes as the golden model
    (one threshold for both layers, IF neurons, no sum large enough to saturate)."""
    spec = replace(load_spec(CONFIGS / "digits.toml"), hidden=(20,), thresholds=(60, 60))
    weights = initial_weights(spec, seed=5)
    net = snn_from_nir(core_to_nir(spec, weights))
    codes = np.random.default_rng(1).integers(0, 1 << spec.input_bits, (16, spec.inputs))
    with torch.no_grad():
        counts = net(torch.from_numpy(codes).float()).numpy()
    golden = np.stack([GoldenCore(spec, weights).infer(x).output for x in codes])
    assert (golden > 0).mean() > 0.25, "needs outputs that fire"
    assert np.array_equal(counts, golden)


def test_float_graph_converts_onto_a_base_spec():
    net = _snn("FC_10_FC_3", (8,), beta=0.875, threshold=0.5)
    for block in net.blocks:
        torch.nn.init.zeros_(block.layer.bias)
    base = replace(_hardtanh(), neuron="lif", time_steps=8, act_shifts=(), thresholds=(1, 1))
    spec, weights = core_from_nir(snn_to_nir(net), base=base)
    floats = [block.layer.weight.detach().double().numpy().T for block in net.blocks]
    expected_spec, expected = convert(
        replace(base, inputs=8, hidden=(10,), classes=3), floats, threshold=0.5, beta=0.875
    )
    assert spec == expected_spec
    assert spec.leak_shift == 3
    assert all(np.array_equal(w, e) for w, e in zip(weights, expected, strict=True))
    with pytest.raises(ConfigError, match="base"):
        core_from_nir(snn_to_nir(net))


def _with_node(graph: nir.NIRGraph, after: str, name: str, node: nir.NIRNode) -> nir.NIRGraph:
    """`graph` with `node` spliced in after `after`."""
    (old,) = [edge for edge in graph.edges if edge[0] == after]
    graph.nodes[name] = node
    graph.edges = [e for e in graph.edges if e != old] + [(after, name), (name, old[1])]
    return graph


def test_unsupported_node_is_refused_by_name():
    graph = _with_node(snn_to_nir(_snn()), "lif0", "wait0", nir.Delay(delay=np.ones(12)))
    with pytest.raises(ConfigError, match=r"'wait0' \(Delay\)"):
        snn_from_nir(graph)


def test_a_pool_that_is_not_a_max_pool_is_refused_by_name():
    graph = snn_to_nir(_snn("CONV_3_3_1_1_FC_4", (2, 6, 6)))
    graph.nodes["pool0_any"].threshold[:] = 1.0  # two spikes of four: not their maximum
    with pytest.raises(ConfigError, match=r"'pool0_any' \(Threshold\)"):
        snn_from_nir(graph)


def test_branch_and_recurrence_are_refused_by_name():
    graph = snn_to_nir(_snn())
    graph.edges.append(("lif0", "output"))
    with pytest.raises(ConfigError, match=r"'lif0' \(LIF\) feeds 2"):
        snn_from_nir(graph)
    graph = snn_to_nir(_snn())
    graph.nodes["w_rec"] = nir.Linear(weight=np.eye(12))
    graph.edges += [("lif0", "w_rec"), ("w_rec", "lif0")]
    with pytest.raises(ConfigError, match="'lif0'"):
        snn_from_nir(graph)


def test_conv_layers_do_not_fit_the_core():
    graph = snn_to_nir(_snn("CONV_3_3_1_1_FC_4", (2, 6, 6)))
    with pytest.raises(ConfigError, match=r"'conv0' \(Conv2d\).*convolutional front end"):
        core_from_nir(graph, base=CORES[0])


def test_neurons_that_mean_another_reset_or_a_synapse_are_refused():
    graph = snn_to_nir(_snn())
    graph.nodes["lif1"].metadata.clear()
    with pytest.raises(ConfigError, match=r"'lif1' \(LIF\).*assume_subtract"):
        snn_from_nir(graph)
    assert snn_from_nir(graph, assume_subtract=True).config.beta == 0.9
    lif = graph.nodes["lif1"]
    graph.nodes["lif1"] = nir.CubaLIF(
        tau_syn=np.full(4, 2 * DT),
        tau_mem=lif.tau,
        r=lif.r,
        v_leak=lif.v_leak,
        v_threshold=lif.v_threshold,
        w_in=2.0,
    )
    with pytest.raises(ConfigError, match=r"'lif1' \(CubaLIF\).*synaptic current"):
        snn_from_nir(graph, assume_subtract=True)


def test_core_graph_edited_against_its_spec_is_refused():
    spec = CORES[0]
    graph = core_to_nir(spec, initial_weights(spec))
    graph.nodes["lif1"].v_threshold[:] += 1
    with pytest.raises(ConfigError, match=r"'lif1' \(IF\): v_threshold disagrees"):
        core_from_nir(graph)
    graph = core_to_nir(spec, initial_weights(spec))
    graph.metadata[SPEC] = graph.metadata[SPEC].replace("hidden = [100]", "hidden = [99]")
    with pytest.raises(ConfigError, match=r"weights\[0\]"):
        core_from_nir(graph)


def test_snntorch_exported_graph_imports_with_the_same_spikes():
    pytest.importorskip("nirtorch")  # snnTorch's exporter needs it
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    def leaky(n: int, **kwargs) -> snn.Leaky:  # per-neuron β, θ: NIR types need the shape
        beta, theta = torch.full((n,), 0.875), torch.full((n,), 0.5)
        return snn.Leaky(beta=beta, threshold=theta, init_hidden=True, **kwargs)

    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(6, 10), torch.nn.Linear(10, 3)
    net = torch.nn.Sequential(lin1, leaky(10), lin2, leaky(3, output=True))
    graph = export_to_nir(net, torch.rand(1, 6), ignore_dims=[0])
    ours = snn_from_nir(graph, time_steps=8, assume_subtract=True)
    x = _inputs((6,), n=30, seed=2)
    with torch.no_grad():
        utils.reset(net)
        counts = sum(net(x)[0] for _ in range(8))
        assert 0 < counts.sum() < counts.numel() * 8
        assert torch.equal(ours(x), counts)


def test_files_are_written_whole_and_bad_ones_refused_by_name(tmp_path):
    path = write_nir(tmp_path / "net.nir", snn_to_nir(_snn()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.nir"]
    with pytest.raises(ConfigError, match=r"missing\.nir"):
        read_nir(tmp_path / "missing.nir")
    (tmp_path / "junk.nir").write_bytes(path.read_bytes()[:64])
    with pytest.raises(ConfigError, match=r"junk\.nir"):
        read_nir(tmp_path / "junk.nir")
