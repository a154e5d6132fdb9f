"""`CoreSpec`: the frozen, validated description of one learning core.

It is the single source of truth shared by the golden model (`sim.chip`), the RTL
generator, the firmware images and the reports. Every field is an integer, a string or a
tuple of integers, so a spec round-trips exactly through TOML (`load_spec`, `save_spec`).
`docs/hardware_contract.md` defines what each field means bit for bit.

Validation happens on construction; each error names the field and the allowed range.
The bounds on the widths are the ones under which the contract's sums and products are
exact in int64 (the golden model's integer type) before their declared saturation.
"""

import tomllib
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np

from quant.atomic import atomic_write_text
from quant.errors import ConfigError
from quant.fixed import ROUNDINGS, QFormat
from quant.lfsr import MAXIMAL_TAPS

ENCODINGS = ("intensity", "spikes")
NEURONS = ("lif", "hardtanh")
CORE_RULES = ("none", "drtp", "lfp")
PROJECTIONS = ("rom", "lfsr")
LEARN_GATES = ("always", "margin")
# The convolutional front end's fields at their "no front end" values (contract §3).
CONV_DEFAULTS = {
    "image_shape": (),
    "conv_channels": 0,
    "conv_kernel": 0,
    "conv_stride": 0,
    "conv_threshold": 0,
    "kernel_bits": 0,
}
# Optional features written to TOML only when switched on: a spec without them keeps the
# text, and so the hash (`rtl.memory_map.spec_hash`), it had before they existed.
OPTIONAL_FIELDS = {"learn_gate": "always", "gate_margin": 0} | CONV_DEFAULTS
MAX_EXACT_BITS = 62  # every product the contract forms must stay below 2^62


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class CoreSpec:
    """One learning core: topology, encoding, neuron, widths, rule, rounding, seeds, lanes,
    and an optional convolutional front end."""

    name: str
    inputs: int
    hidden: tuple[int, ...]
    classes: int
    input_bits: int = 8
    encoding: Literal["intensity", "spikes"] = "intensity"
    time_steps: int = 8
    neuron: Literal["lif", "hardtanh"] = "lif"
    thresholds: tuple[int, ...] = ()
    leak_shift: int = 0
    act_shifts: tuple[int, ...] = ()
    act_bits: int = 8
    weight_bits: int = 8
    membrane_bits: int = 16
    acc_bits: int = 32
    reward_bits: int = 16
    reward_frac: int = 8
    q_frac: int = 16
    recip_bits: int = 4
    rule: Literal["none", "drtp", "lfp"] = "drtp"
    lr_shifts: tuple[int, ...] = ()
    rounding: Literal["floor", "nearest", "stochastic"] = "stochastic"
    projection: Literal["rom", "lfsr"] = "lfsr"
    lanes: int = 8
    lfsr_width: int = 32
    seed: int = 1
    projection_seed: int = 1
    learn_gate: Literal["always", "margin"] = "always"
    gate_margin: int = 0
    # The convolutional front end (contract §3): fixed kernels before the first dense layer;
    # conv_channels = 0 means none, and then every field below keeps its default.
    image_shape: tuple[int, ...] = ()  # (channels, height, width) of the input, row-major
    conv_channels: int = 0
    conv_kernel: int = 0
    conv_stride: int = 0
    conv_threshold: int = 0
    kernel_bits: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(f"name must be an identifier (letters, digits, _), got {self.name!r}")
        object.__setattr__(self, "hidden", _int_tuple("hidden", self.hidden))
        object.__setattr__(self, "lr_shifts", _int_tuple("lr_shifts", self.lr_shifts))
        object.__setattr__(self, "thresholds", _int_tuple("thresholds", self.thresholds))
        object.__setattr__(self, "act_shifts", _int_tuple("act_shifts", self.act_shifts))
        object.__setattr__(self, "image_shape", _int_tuple("image_shape", self.image_shape))
        _check_range("inputs", self.inputs, 1, 1 << 16)
        for k, width in enumerate(self.hidden):
            _check_range(f"hidden[{k}]", width, 1, 1 << 14)
        _check_range("classes", self.classes, 2, 1 << 10)
        _check_range("input_bits", self.input_bits, 1, 16)
        _check_choice("encoding", self.encoding, ENCODINGS)
        _check_choice("neuron", self.neuron, NEURONS)
        _check_choice("rule", self.rule, CORE_RULES)
        _check_choice("rounding", self.rounding, ROUNDINGS)
        _check_choice("projection", self.projection, PROJECTIONS)
        self._check_neuron()
        _check_range("weight_bits", self.weight_bits, 2, 16)
        _check_range("lanes", self.lanes, 1, 64)
        if self.lfsr_width not in MAXIMAL_TAPS:
            raise ConfigError(
                f"lfsr_width must be one of {sorted(MAXIMAL_TAPS)}, got {self.lfsr_width!r}"
            )
        _check_range("seed", self.seed, 1, (1 << self.lfsr_width) - 1)
        _check_range("projection_seed", self.projection_seed, 1, (1 << self.lfsr_width) - 1)
        self._check_conv()
        self._check_accumulator()
        self._check_learning()
        self._check_gate()

    def _check_neuron(self) -> None:
        if self.neuron == "lif":
            _check_range("time_steps", self.time_steps, 1, 255)
            _check_range("membrane_bits", self.membrane_bits, 4, 32)
            self._check_per_layer("thresholds", 1, (1 << (self.membrane_bits - 1)) - 1)
            _check_range("leak_shift", self.leak_shift, 0, self.membrane_bits)
            if self.act_shifts:
                raise ConfigError("act_shifts must be empty for LIF neurons")
        else:
            if self.thresholds:
                raise ConfigError("thresholds must be empty for hardtanh neurons")
            if self.time_steps != 1:
                raise ConfigError(f"time_steps must be 1 for hardtanh, got {self.time_steps}")
            if self.encoding != "intensity":
                raise ConfigError("encoding must be 'intensity' for hardtanh neurons")
            _check_range("act_bits", self.act_bits, 2, 16)
            self._check_per_layer("act_shifts", 0, 40)

    def _check_per_layer(self, name: str, low: int, high: int) -> None:
        """`name` holds one value per weight layer, each in `[low, high]`."""
        values = getattr(self, name)
        layers = len(self.hidden) + 1
        if len(values) != layers:
            raise ConfigError(
                f"{name} must hold one value per weight layer ({layers}), got {len(values)}"
            )
        for k, value in enumerate(values):
            _check_range(f"{name}[{k}]", value, low, high)

    def _check_conv(self) -> None:
        """The front end's fields: all at their defaults without it, in range with it."""
        _check_range("conv_channels", self.conv_channels, 0, 1 << 10)
        if not self.conv:
            for name, default in CONV_DEFAULTS.items():
                if getattr(self, name) != default:
                    raise ConfigError(
                        f"{name} must be left out without a front end (conv_channels = 0)"
                    )
            return
        if not self.spiking:
            raise ConfigError("conv_channels: the convolutional front end needs neuron 'lif'")
        if len(self.image_shape) != 3:
            raise ConfigError(
                f"image_shape must be (channels, height, width), got {list(self.image_shape)}"
            )
        for k, size in enumerate(self.image_shape):
            _check_range(f"image_shape[{k}]", size, 1, 1 << 16)
        channels, height, width = self.image_shape
        if channels * height * width != self.inputs:
            raise ConfigError(
                f"image_shape: {channels} x {height} x {width} = {channels * height * width} "
                f"values, but inputs = {self.inputs}"
            )
        _check_range("conv_kernel", self.conv_kernel, 1, min(height, width))
        _check_range("conv_stride", self.conv_stride, 1, min(height, width))
        _check_range("conv_threshold", self.conv_threshold, 1, (1 << (self.membrane_bits - 1)) - 1)
        _check_range("kernel_bits", self.kernel_bits, 2, 16)
        if self.conv_outputs > 1 << 16:
            raise ConfigError(
                f"conv_channels: the front end has {self.conv_outputs} neurons "
                f"({' x '.join(map(str, self.conv_shape))}), more than {1 << 16}"
            )

    def _check_accumulator(self) -> None:
        fan = max(self.layer_sizes).bit_length()
        low = max(self.weight_bits + self.activity_bits, self.membrane_bits if self.spiking else 0)
        if self.conv:
            low = max(low, self.conv_sum_bits)
        high = MAX_EXACT_BITS - self.weight_bits - max(self.activity_bits, fan)
        _check_range("acc_bits", self.acc_bits, low, high)

    def _check_learning(self) -> None:
        if self.rule == "none":
            if self.lr_shifts:
                raise ConfigError("lr_shifts must be empty for rule 'none'")
            return
        high = 40
        if self.rule == "lfp":
            if not self.spiking:
                raise ConfigError("rule 'lfp' needs neuron 'lif': its reward counts spikes")
            _check_range("reward_bits", self.reward_bits, 4, 32)
            _check_range("reward_frac", self.reward_frac, 0, self.reward_bits - 2)
            _check_range("recip_bits", self.recip_bits, 0, 8)
            _check_range(
                "q_frac", self.q_frac, 0, MAX_EXACT_BITS - self.reward_bits - self.recip_bits - 2
            )
            high = min(high, MAX_EXACT_BITS - self.q_frac)  # F + shift stays exact
        self._check_per_layer("lr_shifts", 0, high)

    def _check_gate(self) -> None:
        _check_choice("learn_gate", self.learn_gate, LEARN_GATES)
        if self.rule == "none" and self.learn_gate != "always":
            raise ConfigError("learn_gate must be 'always' for rule 'none'")
        if self.learn_gate == "always":
            _check_range("gate_margin", self.gate_margin, 0, 0)
        else:
            _check_range("gate_margin", self.gate_margin, 0, self.output_max)

    @property
    def spiking(self) -> bool:
        return self.neuron == "lif"

    @property
    def conv(self) -> bool:
        """Whether the core has the convolutional front end."""
        return self.conv_channels > 0

    @property
    def conv_shape(self) -> tuple[int, int, int]:
        """The front end's neurons as `(channels, height, width)`: a "valid" convolution."""
        _, height, width = self.image_shape
        k, s = self.conv_kernel, self.conv_stride
        return self.conv_channels, (height - k) // s + 1, (width - k) // s + 1

    @property
    def conv_outputs(self) -> int:
        """Neurons of the front end, the presynaptic neurons of the first dense layer."""
        channels, height, width = self.conv_shape
        return channels * height * width

    @property
    def conv_sum_bits(self) -> int:
        """Signed bits of the largest conv current: every tap at the most negative kernel
        value times the largest input (1 for spikes); the accumulator must hold it."""
        top = 1 if self.encoding == "spikes" else (1 << self.input_bits) - 1
        taps = self.image_shape[0] * self.conv_kernel**2
        largest = taps * top << (self.kernel_bits - 1)
        return 1 + (largest - 1).bit_length()

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Neurons per layer, input first: `(n_0, *hidden, classes)`, where `n_0` is
        `inputs`, or the front end's neurons when there is one (contract §1)."""
        return (self.conv_outputs if self.conv else self.inputs, *self.hidden, self.classes)

    @property
    def activity_bits(self) -> int:
        """Unsigned bits of the largest presynaptic window activity `A_i` (contract §2)."""
        if self.spiking:
            return ((1 << self.input_bits) * self.time_steps).bit_length()
        return max(self.input_bits, self.act_bits)

    @cached_property  # the golden model reads these per neuron update
    def weight(self) -> QFormat:
        return QFormat(self.weight_bits)

    @cached_property
    def accumulator(self) -> QFormat:
        return QFormat(self.acc_bits)

    @cached_property
    def membrane(self) -> QFormat:
        return QFormat(self.membrane_bits)

    @cached_property
    def reward(self) -> QFormat:
        return QFormat(self.reward_bits, self.reward_frac)

    @property
    def activation_max(self) -> int:
        """Largest hard-tanh activation `A = 2^(act_bits−1) − 1`."""
        return (1 << (self.act_bits - 1)) - 1

    @property
    def output_max(self) -> int:
        """Largest output: T spikes, or the largest hard-tanh activation."""
        return self.time_steps if self.spiking else self.activation_max

    def inference_only(self) -> "CoreSpec":
        """The same core without learning: what the cost of learning is measured against."""
        return replace(self, rule="none", lr_shifts=(), learn_gate="always", gate_margin=0)

    def input_codes(self, u: np.ndarray) -> np.ndarray:
        """Host conversion of floats in [0, 1] to unsigned `input_bits` codes (contract §2)."""
        u = np.asarray(u, dtype=np.float64)
        if u.shape[-1:] != (self.inputs,):
            raise ConfigError(f"inputs: expected {self.inputs} values per sample, got {u.shape}")
        if not np.isfinite(u).all() or u.min(initial=0) < 0 or u.max(initial=0) > 1:
            raise ConfigError("inputs must be finite floats in [0, 1]")
        return np.floor(u * ((1 << self.input_bits) - 1) + 0.5).astype(np.int64)

    def layer_arrays(self, weights: Sequence[object], dtype: type) -> list[np.ndarray]:
        """`weights` as one `[n_in, n_out]` array per weight layer, copied to `dtype`;
        refused (naming the layer) when the count or a shape does not fit the spec."""
        sizes = self.layer_sizes
        if len(weights) != len(sizes) - 1:
            raise ConfigError(f"weights: expected {len(sizes) - 1} layers, got {len(weights)}")
        arrays = []
        for k, w in enumerate(weights):
            w = np.array(w, dtype=dtype)
            if w.shape != (sizes[k], sizes[k + 1]):
                hint = (
                    " (transpose a torch [out, in] weight)"
                    if w.shape[::-1] == sizes[k : k + 2]
                    else ""
                )
                raise ConfigError(
                    f"weights[{k}]: expected shape {(sizes[k], sizes[k + 1])} [in, out], "
                    f"got {w.shape}{hint}"
                )
            arrays.append(w)
        return arrays

    def kernel_array(self, kernels: object) -> np.ndarray:
        """A copy of the front end's `kernels` as int64, refused unless the spec has a front
        end and their shape `[C_out, C_in, k, k]` and range match it."""
        if not self.conv:
            raise ConfigError(f"kernels: spec {self.name!r} has no convolutional front end")
        if kernels is None:
            raise ConfigError(
                f"kernels: spec {self.name!r} has a convolutional front end; pass them"
            )
        k = self.conv_kernel
        shape = (self.conv_channels, self.image_shape[0], k, k)
        checked = np.array(kernels, dtype=np.int64)
        if checked.shape != shape:
            raise ConfigError(
                f"kernels: expected shape {shape} [out, in, k, k], got {checked.shape}"
            )
        if not QFormat(self.kernel_bits).contains(checked):
            raise ConfigError(f"kernels: values outside the {self.kernel_bits}-bit range")
        return checked

    def require_no_conv(self, what: str) -> None:
        """Refuse a spec with the convolutional front end in `what`, which lacks it, rather
        than let it misread the first layer's inputs."""
        if self.conv:
            raise ConfigError(
                f"conv_channels: {what} does not support the convolutional front end yet "
                f"(spec {self.name!r} has conv_channels = {self.conv_channels})"
            )

    def blocks(self, width: int) -> int:
        """Memory words per row of `width` neurons: `ceil(width / lanes)`."""
        return -(-width // self.lanes)


def _int_tuple(name: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, tuple | list):
        raise ConfigError(f"{name} must be a list of integers, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ConfigError(f"{name} must be a list of integers, got {value!r}")
    return tuple(value)


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def spec_to_toml(spec: CoreSpec) -> str:
    """The spec as a flat TOML table `[core]`, one field per line in declaration order."""
    lines = ["[core]"] + [
        f"{key} = {_toml_value(value)}"
        for key, value in asdict(spec).items()
        if key not in OPTIONAL_FIELDS or value != OPTIONAL_FIELDS[key]
    ]
    return "\n".join(lines) + "\n"


def spec_from_toml(text: str, source: str = "<string>") -> CoreSpec:
    """Parse a `[core]` table; unknown or missing fields are refused by name."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML: {error}") from error
    core = table.get("core")
    if not isinstance(core, dict):
        raise ConfigError(f"{source}: expected a [core] table")
    known = {f.name for f in fields(CoreSpec)}
    unknown = sorted(set(core) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}")
    try:
        return CoreSpec(**core)
    except TypeError as error:
        missing = sorted(
            f.name for f in fields(CoreSpec) if f.name not in core and f.default is MISSING
        )
        raise ConfigError(f"{source}: missing field(s) {', '.join(missing)}") from error
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from error


def load_spec(path: str | Path) -> CoreSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read spec: {error.strerror}") from error
    return spec_from_toml(text, str(path))


def save_spec(spec: CoreSpec, path: str | Path) -> None:
    atomic_write_text(Path(path), spec_to_toml(spec))
