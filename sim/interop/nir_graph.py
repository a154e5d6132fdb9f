"""NIR (Neuromorphic Intermediate Representation) export and import.

Two networks cross into NIR: the float spiking network of `sim.models.snn` (snnTorch
`Leaky` layers) and the learning core (`CoreSpec` and its integer weights). Both become a
chain `Input → [Flatten] → Affine | Linear | Conv2d → LIF | IF → … → Output`, read back
only when it is such a chain.

Neurons follow snnTorch's own `export_nir` mapping, with per-neuron arrays: β < 1 is
`LIF(tau = dt / (1 − β), r = tau / dt, v_leak = 0)` with snnTorch's `dt = 1e-4`, so that
the forward-Euler step `v ← (1 − dt/τ) v + (r dt/τ) I` is `v ← β v + I`; β = 1 is
`IF(r = 1)`, one unit of input per step, as snnTorch's importer reads IF. The parameters
are computed in float64, where β and θ come back bit for bit.

What NIR cannot say, and what stands in for it:

- reset: a NIR neuron resets *to* `v_reset` when it fires; plasticore's neurons subtract θ
  one step after the spike (snnTorch `reset_mechanism="subtract"` with its reset delay).
  Each neuron node is written with `v_reset = 0`, as snnTorch writes it, and the metadata
  `plasticore.reset = "subtract-delayed"`. A neuron node without that metadata is refused
  unless the caller vouches for the reading (`assume_subtract=True`, right for graphs of
  snnTorch's exporter, which drops its reset mechanism the same way).
- max pooling: NIR has no max-pool node. A conv layer's 2x2 max pool of binary spikes is
  `SumPool2d(2, 2) → Threshold(0.5)` (fires where any of the four fired), exactly.
- the time window and the encoding: the input is held constant for `time_steps` steps
  (constant-current encoding; graph metadata `plasticore.time_steps`).
- the core's integer details: the floor of the shift leak, saturation, and the hard-tanh
  clip (NIR has no clipping node: a hard-tanh layer is a `Scale` by `2^−act_shift` marked
  `plasticore.activation = "hardtanh"`). The exact core travels as its spec's TOML text
  in the graph metadata (`plasticore.spec`) beside its integer weights.
"""

import io
import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import nir
import numpy as np
import torch

from quant.atomic import atomic_write
from quant.convert import convert
from quant.errors import ConfigError
from quant.spec import CoreSpec, spec_from_toml, spec_to_toml
from sim.chip.golden import check_weights
from sim.models.network import Network, spatial_out_size
from sim.models.snn import SNNConfig, SpikingBlock, SpikingNetwork
from sim.models.topology import LayerSpec, format_topology

DT = 1e-4  # snnTorch's export_nir step: tau = DT / (1 − β), r = tau / DT
FORMAT = "plasticore.format"  # graph metadata: "snn" or "core"
TIME_STEPS = "plasticore.time_steps"  # graph metadata: the window T
SPEC = "plasticore.spec"  # graph metadata: the core's spec as TOML text
RESET = "plasticore.reset"  # neuron metadata: how the neuron resets
SUBTRACT_DELAYED = "subtract-delayed"  # θ subtracted one step after the spike
ACTIVATION = "plasticore.activation"  # Scale metadata: "hardtanh" (clip to ±A after it)
HARDTANH = "hardtanh"
CLIP = "plasticore.clip"  # Scale metadata: the hard-tanh bound A
TOLERANCE = 1e-6  # relative error accepted on the input gain r·dt/τ (snnTorch rounds to f32)

SYNAPSES = (nir.Affine, nir.Linear, nir.Conv2d)
NEURONS = (nir.LIF, nir.CubaLIF, nir.IF)
Step = tuple[str, nir.NIRNode]


def _label(name: str, node: nir.NIRNode) -> str:
    return f"node {name!r} ({type(node).__name__})"


def _full(shape: Sequence[int], value: float) -> np.ndarray:
    return np.full(tuple(shape), value, dtype=np.float64)


# -- export: the float spiking network -------------------------------------------------


def _neuron_node(beta: float, threshold: float, shape: Sequence[int]) -> nir.NIRNode:
    """snnTorch's LIF (or IF for β = 1) with per-neuron arrays and the reset metadata."""
    meta = {RESET: SUBTRACT_DELAYED}
    theta = _full(shape, threshold)
    if beta == 1.0:
        return nir.IF(r=_full(shape, 1.0), v_threshold=theta, metadata=meta)
    tau = _full(shape, DT / (1.0 - beta))
    return nir.LIF(tau=tau, r=tau / DT, v_leak=_full(shape, 0.0), v_threshold=theta, metadata=meta)


def _synapse_node(block: SpikingBlock, shape: tuple[int, ...]) -> nir.NIRNode:
    layer = block.layer
    weight = layer.weight.detach().numpy().copy()
    bias = None if layer.bias is None else layer.bias.detach().numpy().copy()
    if block.spec.kind == "fc":
        return nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
    return nir.Conv2d(
        input_shape=shape[1:],
        weight=weight,
        stride=block.spec.stride,
        padding=block.spec.padding,
        dilation=1,
        groups=1,
        bias=np.zeros(weight.shape[0], dtype=weight.dtype) if bias is None else bias,
    )


def _block_nodes(k: int, block: SpikingBlock, shape: tuple[int, ...]) -> dict[str, nir.NIRNode]:
    """Layer k as NIR nodes: [Flatten], weights, neurons, [sum pool + threshold = max pool]."""
    spec = block.spec
    nodes: dict[str, nir.NIRNode] = {}
    if spec.kind == "fc" and len(shape) > 1:
        nodes[f"flatten{k}"] = nir.Flatten(input_type=np.array(shape), start_dim=0)
        shape = (math.prod(shape),)
    nodes[f"{spec.kind}{k}"] = _synapse_node(block, shape)
    out = _neuron_shape(spec, shape)
    beta = float(block.beta.detach().double())
    nodes[f"lif{k}"] = _neuron_node(beta, float(block.threshold.detach().double()), out)
    if block.pool is not None:
        two = np.array([2, 2])
        nodes[f"pool{k}"] = nir.SumPool2d(kernel_size=two, stride=two, padding=np.zeros(2, int))
        pooled = (out[0], out[1] // 2, out[2] // 2)
        nodes[f"pool{k}_any"] = nir.Threshold(threshold=_full(pooled, 0.5))
    return nodes


def _chain_graph(
    nodes: dict[str, nir.NIRNode], out_shape: Sequence[int], metadata: dict
) -> nir.NIRGraph:
    """`nodes` (in order, input first) linked one after the other, ending in an Output."""
    nodes["output"] = nir.Output(output_type=np.array(out_shape))
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(names)), metadata=metadata)


def snn_to_nir(network: SpikingNetwork) -> nir.NIRGraph:
    """The network as a NIR chain; its output is the last LIF layer's spikes (the class is
    the argmax of their count over `time_steps` steps of constant input)."""
    config = network.config
    shape = tuple(config.input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(shape))}
    for k, block in enumerate(network.blocks):
        nodes |= _block_nodes(k, block, shape)
        shape = Network._out_shape(block.spec, shape, config.topology)
    metadata = {FORMAT: "snn", TIME_STEPS: config.time_steps, "dt": DT}
    return _chain_graph(nodes, shape, metadata)


# -- import: a chain of stages ----------------------------------------------------------


def _chain(graph: nir.NIRGraph) -> tuple[tuple[int, ...], list[Step]]:
    """The input shape and the nodes between Input and Output, refused unless the graph is
    one chain (no branches, merges, recurrence or subgraphs)."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise ConfigError(f"{_label(name, node)}: subgraphs (recurrent layers) do not import")
    succ: dict[str, list[str]] = {name: [] for name in graph.nodes}
    pred: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        if src not in graph.nodes or dst not in graph.nodes:
            raise ConfigError(f"edge ({src!r}, {dst!r}) names a node the graph does not have")
        succ[src].append(dst)
        pred[dst].append(src)
    for name, node in graph.nodes.items():
        if len(succ[name]) > 1:
            raise ConfigError(f"{_label(name, node)} feeds {len(succ[name])} nodes: only chains")
        if len(pred[name]) > 1:
            raise ConfigError(
                f"{_label(name, node)} has {len(pred[name])} inputs (a merge or recurrence): "
                "only chains import"
            )
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise ConfigError(f"the graph has {len(inputs)} Input nodes, a chain has one")
    steps: list[Step] = []
    name = inputs[0]
    while succ[name] and not isinstance(graph.nodes[succ[name][0]], nir.Output | nir.Input):
        name = succ[name][0]
        steps.append((name, graph.nodes[name]))
    if not succ[name] or not isinstance(graph.nodes[succ[name][0]], nir.Output):
        raise ConfigError(f"the chain from {inputs[0]!r} ends at {name!r}, not at an Output")
    unused = set(graph.nodes) - {inputs[0], succ[name][0], *(n for n, _ in steps)}
    if unused:
        stray = sorted(unused)[0]
        raise ConfigError(f"{_label(stray, graph.nodes[stray])} is off the input-output chain")
    shape = graph.nodes[inputs[0]].input_type["input"]
    return tuple(int(d) for d in np.atleast_1d(shape)), steps


@dataclass(frozen=True)
class Stage:
    """One weight layer of a chain: its weights, its neurons and (conv) its max pool."""

    synapse: Step
    neuron: Step
    spec: LayerSpec
    out_shape: tuple[int, ...]  # the neurons' shape (before pooling)


def _pair(name: str, node: nir.NIRNode, field: str) -> int:
    """A conv parameter that plasticore's square layers can take: equal in both dims."""
    value = getattr(node, field)
    if isinstance(value, str):
        if value == "valid":
            return 0
        raise ConfigError(f"{_label(name, node)}: {field} {value!r} is not supported, use ints")
    values = {int(v) for v in np.atleast_1d(value)}
    if len(values) != 1:
        raise ConfigError(f"{_label(name, node)}: {field} {value} differs by dimension")
    return values.pop()


def _conv_spec(name: str, node: nir.Conv2d, shape: tuple[int, ...]) -> LayerSpec:
    weight = np.asarray(node.weight)
    if len(shape) != 3 or weight.shape[1] != shape[0]:
        raise ConfigError(
            f"{_label(name, node)}: takes {weight.shape[1]} channels of (C, H, W), gets {shape}"
        )
    if weight.shape[2] != weight.shape[3]:
        raise ConfigError(f"{_label(name, node)}: kernel {weight.shape[2:]} is not square")
    if node.input_shape is not None and tuple(np.atleast_1d(node.input_shape)) != shape[1:]:
        raise ConfigError(f"{_label(name, node)}: input_shape {node.input_shape}, gets {shape}")
    if _pair(name, node, "dilation") != 1 or int(node.groups) != 1:
        raise ConfigError(f"{_label(name, node)}: dilation and groups must be 1")
    stride, padding = _pair(name, node, "stride"), _pair(name, node, "padding")
    return LayerSpec("conv", weight.shape[0], weight.shape[2], stride, padding)


def _neuron_shape(spec: LayerSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of the neurons after a weight layer (before any pooling)."""
    if spec.kind == "fc":
        return (spec.width,)
    return (spec.width, *spatial_out_size(spec, *shape[1:]))


def _layer_spec(name: str, node: nir.NIRNode, shape: tuple[int, ...]) -> LayerSpec:
    if isinstance(node, nir.Conv2d):
        return _conv_spec(name, node, shape)
    weight = np.asarray(node.weight)
    if weight.ndim != 2 or len(shape) != 1 or weight.shape[1] != shape[0]:
        raise ConfigError(
            f"{_label(name, node)}: weight {weight.shape} does not take the input {shape} "
            "(a dense layer needs a flat input: add a Flatten)"
        )
    return LayerSpec("fc", weight.shape[0])


def _flatten(name: str, node: nir.Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape after a Flatten, which must flatten everything (a dense layer follows)."""
    start, end = int(node.start_dim), int(node.end_dim)
    if start not in (0, -len(shape)) or end not in (-1, len(shape) - 1):
        raise ConfigError(
            f"{_label(name, node)}: flattens dims {start}..{end} of {shape}; only a full "
            "flatten (start_dim 0, end_dim -1) imports"
        )
    return (math.prod(shape),)


def _max_pool(steps: list[Step], i: int, after: str) -> int:
    """Check that steps[i:i+2] are the 2x2 max pool of spikes; the index past them."""
    if i + 1 >= len(steps):
        raise ConfigError(f"conv neurons {after!r} need a 2x2 pool and a Threshold after them")
    (name, pool), (tname, threshold) = steps[i], steps[i + 1]
    if not isinstance(pool, nir.SumPool2d | nir.AvgPool2d):
        raise ConfigError(
            f"{_label(name, pool)} follows conv neurons {after!r}: plasticore's conv layers "
            "max-pool their spikes 2x2 (SumPool2d or AvgPool2d, then a Threshold)"
        )
    shape = [_pair(name, pool, f) for f in ("kernel_size", "stride", "padding")]
    if shape != [2, 2, 0]:
        raise ConfigError(f"{_label(name, pool)}: kernel, stride, padding must be 2, 2, 0")
    top = 1.0 if isinstance(pool, nir.SumPool2d) else 0.25  # the pooled value of one spike
    if not isinstance(threshold, nir.Threshold):
        raise ConfigError(
            f"{_label(tname, threshold)} follows pool {name!r}: a pool of spikes feeds on "
            "counts, which plasticore's layers cannot take; a Threshold must make it a max pool"
        )
    values = np.unique(np.asarray(threshold.threshold))
    if len(values) != 1 or not 0.0 <= values[0] < top:
        raise ConfigError(
            f"{_label(tname, threshold)}: threshold {values} is not one value in [0, {top}), "
            "which makes the pool of spikes their maximum"
        )
    return i + 2


def _stages(shape: tuple[int, ...], steps: list[Step]) -> list[Stage]:
    """The chain as weight layers, each with the node after it as its neurons."""
    stages: list[Stage] = []
    i = 0
    while i < len(steps):
        name, node = steps[i]
        if isinstance(node, nir.Flatten):
            shape = _flatten(name, node, shape)
            i += 1
            continue
        if not isinstance(node, SYNAPSES):
            raise ConfigError(
                f"{_label(name, node)} is not supported here: expected a weight layer "
                "(Affine, Linear, Conv2d) or a Flatten"
            )
        if i + 1 == len(steps):
            raise ConfigError(f"{_label(name, node)} feeds the output: it needs neurons after it")
        spec = _layer_spec(name, node, shape)
        out = _neuron_shape(spec, shape)
        stages.append(Stage(steps[i], steps[i + 1], spec, out))
        i += 2
        if spec.kind == "conv":
            i = _max_pool(steps, i, steps[i - 1][0])
        shape = (spec.width,) if spec.kind == "fc" else (out[0], out[1] // 2, out[2] // 2)
    if not stages:
        raise ConfigError("the graph has no weight layer")
    return stages


def _uniform(name: str, node: nir.NIRNode, field: str, value: object, size: int) -> float:
    """The one value of a per-neuron parameter; plasticore's layers share one."""
    array = np.asarray(value, dtype=np.float64)
    if array.size not in (1, size):
        raise ConfigError(f"{_label(name, node)}: {field} has {array.size} values, not {size}")
    values = np.unique(array)
    if len(values) != 1:
        raise ConfigError(f"{_label(name, node)}: {field} differs between neurons")
    return float(values[0])


def _neuron(stage: Stage, dt: float, assume_subtract: bool) -> tuple[float, float]:
    """(β, θ) of a stage's neurons, refused (naming the node) unless plasticore's neuron
    computes the same: zero leak potential, unit input gain, reset by subtraction."""
    name, node = stage.neuron
    if not isinstance(node, NEURONS):
        raise ConfigError(
            f"{_label(name, node)} follows {stage.synapse[0]!r}: expected neurons "
            "(LIF, CubaLIF, IF)"
        )
    if node.metadata.get(RESET) != SUBTRACT_DELAYED and not assume_subtract:
        raise ConfigError(
            f"{_label(name, node)}: NIR neurons reset to v_reset, plasticore's subtract θ a step "
            "later; pass assume_subtract=True if the graph means that (snnTorch's exporter does)"
        )
    size = math.prod(stage.out_shape)

    def one(field: str) -> float:
        return _uniform(name, node, field, getattr(node, field), size)

    threshold = one("v_threshold")
    if isinstance(node, nir.IF):
        if one("r") != 1.0:
            raise ConfigError(f"{_label(name, node)}: r must be 1 (unit input per step)")
        return 1.0, threshold
    if isinstance(node, nir.CubaLIF) and (
        not math.isclose(one("tau_syn"), dt, rel_tol=TOLERANCE) or one("w_in") != 1.0
    ):
        raise ConfigError(
            f"{_label(name, node)}: plasticore's neurons have no synaptic current "
            f"(needs tau_syn = dt = {dt:g}, w_in = 1: synaptic decay 0)"
        )
    tau = one("tau" if isinstance(node, nir.LIF) else "tau_mem")
    if not tau > 0.0:
        raise ConfigError(f"{_label(name, node)}: tau must be > 0, got {tau:g}")
    if one("v_leak") != 0.0:
        raise ConfigError(f"{_label(name, node)}: v_leak must be 0")
    gain = one("r") * dt / tau
    if not math.isclose(gain, 1.0, rel_tol=TOLERANCE):
        raise ConfigError(f"{_label(name, node)}: input gain r·dt/tau is {gain:g}, must be 1")
    beta = 1.0 - dt / tau
    if not 0.0 < beta < 1.0:
        raise ConfigError(f"{_label(name, node)}: tau {tau:g} gives decay {beta:g} at dt {dt:g}")
    return beta, threshold


def _shared(stages: list[Stage], values: list[float], what: str) -> float:
    """The value all layers share (plasticore has one β and one θ per network)."""
    for stage, value in zip(stages, values, strict=True):
        if value != values[0]:
            raise ConfigError(
                f"{_label(*stage.neuron)}: {what} {value!r} differs from the first layer's "
                f"{values[0]!r}; plasticore's network has one"
            )
    return values[0]


def _float32(value: float) -> float:
    """The shortest decimal with `value`'s float32, which is all snnTorch keeps of it (so
    an exported β = 0.9 reads back as 0.9, not 0.8999999761581421)."""
    return float(str(np.float32(value)))


def _dt(graph: nir.NIRGraph) -> float:
    return float(graph.metadata.get("dt", DT))


def _load(stage: Stage, block: SpikingBlock) -> None:
    """Copy a stage's weights (and bias, zero if none) into its block."""
    name, node = stage.synapse
    weight = torch.from_numpy(np.asarray(node.weight, dtype=np.float32))
    bias = getattr(node, "bias", None)
    layer = block.layer
    if weight.shape != layer.weight.shape:
        raise ConfigError(
            f"{_label(name, node)}: weight {tuple(weight.shape)}, the layer needs "
            f"{tuple(layer.weight.shape)}"
        )
    with torch.no_grad():  # the network was built with zero weights and biases
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float32)))


def snn_from_nir(
    graph: nir.NIRGraph, time_steps: int | None = None, assume_subtract: bool = False
) -> SpikingNetwork:
    """The spiking network a NIR chain describes, weights loaded.

    `time_steps` defaults to the graph's `plasticore.time_steps` (NIR has no window).
    `assume_subtract` reads neurons without plasticore's reset metadata as resetting by
    subtraction a step late (see the module docstring).
    """
    shape, steps = _chain(graph)
    stages = _stages(shape, steps)
    last = stages[-1]
    if last.spec.kind != "fc":
        raise ConfigError(f"{_label(*last.synapse)}: the output layer must be dense")
    steps_meta = graph.metadata.get(TIME_STEPS)
    if time_steps is None and steps_meta is None:
        raise ConfigError(f"the graph has no {TIME_STEPS}: pass time_steps")
    neurons = [_neuron(stage, _dt(graph), assume_subtract) for stage in stages]
    config = SNNConfig(
        topology=format_topology(tuple(stage.spec for stage in stages)),
        input_shape=shape,
        beta=_float32(_shared(stages, [b for b, _ in neurons], "decay β")),
        threshold=_float32(_shared(stages, [t for _, t in neurons], "threshold")),
        time_steps=int(time_steps if time_steps is not None else steps_meta),
        init="zeros",
    )
    network = SpikingNetwork(config)
    for stage, block in zip(stages, network.blocks, strict=True):
        _load(stage, block)
    return network


# -- the learning core ------------------------------------------------------------------


def _core_neuron(spec: CoreSpec, k: int, width: int) -> nir.NIRNode:
    """Layer k's neurons in integer units: LIF/IF with θ_k, or hard-tanh as a Scale."""
    if spec.spiking:
        beta = 1.0 - 2.0**-spec.leak_shift if spec.leak_shift else 1.0
        return _neuron_node(beta, spec.thresholds[k], (width,))
    return nir.Scale(
        scale=_full((width,), 2.0 ** -spec.act_shifts[k]),
        metadata={ACTIVATION: HARDTANH, CLIP: spec.activation_max},
    )


def core_to_nir(spec: CoreSpec, weights: Sequence[np.ndarray]) -> nir.NIRGraph:
    """The core as a NIR chain in its integer units: input codes in, integer weights
    (`Linear`, torch layout `[out, in]`), integer thresholds; the spec rides in the graph
    metadata so that `core_from_nir` gives back the same core."""
    spec.require_no_conv("NIR export (core_to_nir)")
    checked = check_weights(spec, list(weights))
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array([spec.inputs]))}
    for k, w in enumerate(checked):
        nodes[f"fc{k}"] = nir.Linear(weight=w.T.astype(np.float64))
        nodes[f"{spec.neuron}{k}"] = _core_neuron(spec, k, w.shape[1])
    metadata = {FORMAT: "core", SPEC: spec_to_toml(spec), TIME_STEPS: spec.time_steps, "dt": DT}
    return _chain_graph(nodes, (spec.classes,), metadata)


def _dense(stages: list[Stage]) -> list[np.ndarray]:
    """Float weights `[in, out]` of a dense chain; conv layers and biases are refused."""
    weights = []
    for stage in stages:
        name, node = stage.synapse
        if stage.spec.kind != "fc":
            raise ConfigError(
                f"{_label(name, node)}: the core has no convolutional front end yet; "
                "only dense layers (Affine, Linear) import into a CoreSpec"
            )
        if np.any(np.asarray(getattr(node, "bias", 0.0))):
            raise ConfigError(f"{_label(name, node)}: nonzero bias, the core has none")
        weights.append(np.asarray(node.weight, dtype=np.float64).T)
    return weights


def _differs(a: nir.NIRNode, b: nir.NIRNode) -> str | None:
    """The first parameter in which two nodes differ (type first), None if none does."""
    if type(a) is not type(b):
        return "type"
    for field in fields(a):
        if field.name in ("input_type", "output_type", "metadata"):
            continue
        if not np.array_equal(np.asarray(getattr(a, field.name)), getattr(b, field.name)):
            return field.name
    return None


def _core_exact(stages: list[Stage], text: str) -> tuple[CoreSpec, list[np.ndarray]]:
    """A graph `core_to_nir` wrote: its spec, its integer weights, neurons that agree."""
    spec = spec_from_toml(str(text), f"NIR graph metadata {SPEC}")
    spec.require_no_conv("NIR import (core_from_nir)")
    weights = []
    for stage, w in zip(stages, _dense(stages), strict=True):
        if not np.array_equal(w, np.rint(w)):
            raise ConfigError(f"{_label(*stage.synapse)}: weights are not integers")
        weights.append(w.astype(np.int64))
    weights = check_weights(spec, weights)
    expected = core_to_nir(spec, weights).nodes
    for k, stage in enumerate(stages):
        name, node = stage.neuron
        field = _differs(node, expected[f"{spec.neuron}{k}"])
        if field is not None:
            raise ConfigError(f"{_label(name, node)}: {field} disagrees with the spec in {SPEC}")
    return spec, weights


def core_from_nir(
    graph: nir.NIRGraph, base: CoreSpec | None = None, assume_subtract: bool = False
) -> tuple[CoreSpec, list[np.ndarray]]:
    """A core spec and integer weights `[n_in, n_out]` from a dense NIR chain.

    A graph from `core_to_nir` comes back exactly (its spec is in the metadata). Any other
    dense LIF/IF chain of float weights is converted by `quant.convert` onto `base`, which
    supplies what NIR does not hold (bit widths, rule, rounding, seeds); its sizes, θ and
    leak come from the graph. Hard-tanh cores import only from `core_to_nir` graphs: NIR
    has no clipping node.
    """
    shape, steps = _chain(graph)
    stages = _stages(shape, steps)
    text = graph.metadata.get(SPEC)
    if text is not None:
        return _core_exact(stages, text)
    if base is None:
        raise ConfigError(
            f"the graph carries no {SPEC}: pass base, a CoreSpec for the widths, rule and "
            "rounding that NIR does not hold"
        )
    base.require_no_conv("NIR import (core_from_nir)")
    if not base.spiking:
        raise ConfigError("base is a hard-tanh core: NIR has no clipping node to import from")
    floats = _dense(stages)
    neurons = [_neuron(stage, _dt(graph), assume_subtract) for stage in stages]
    beta = _shared(stages, [b for b, _ in neurons], "decay β")
    sizes = [w.shape[1] for w in floats]
    sized = replace(
        base,
        inputs=floats[0].shape[0],
        hidden=tuple(sizes[:-1]),
        classes=sizes[-1],
        thresholds=(1,) * len(floats),
    )
    return convert(sized, floats, threshold=[t for _, t in neurons], beta=beta)


# -- files ------------------------------------------------------------------------------


def write_nir(path: str | os.PathLike, graph: nir.NIRGraph) -> Path:
    """Write `graph` as a `.nir` (HDF5) file atomically: a reader never sees half of it."""
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a `.nir` file; a missing or malformed one is refused naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such NIR file")
    try:
        return nir.read(path)
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as error:
        raise ConfigError(f"{path}: not a readable NIR graph ({error})") from error
