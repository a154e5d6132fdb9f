"""Topology strings in the style of the DRTP reference code.

`FC_500_FC_10` is two fully connected layers (500 hidden units, 10 outputs);
`CONV_32_5_1_2_FC_1000_FC_10` puts a convolution with 32 kernels of 5x5, stride 1 and
padding 2 (each followed by 2x2 max pooling with stride 2) in front of them. `LC` takes
the same four numbers and builds a locally connected layer: a convolution's connectivity
with untied weights, one kernel per output unit (also followed by 2x2 max pooling). The
last layer is always fully connected and is the output layer.

A hidden layer may carry modifiers: `BN` puts batch normalisation between its weighted
sum and its activation; `SKIP` (fully connected, same width as its input) adds its
input to its activation, a sum skip connection. `FC_64_FC_64_BN_SKIP_FC_10`.
"""

from dataclasses import dataclass
from typing import Literal

from quant.errors import ConfigError


@dataclass(frozen=True)
class LayerSpec:
    """One trainable layer: `fc` with `width` units, `conv` / `lc` with `width` channels."""

    kind: Literal["fc", "conv", "lc"]
    width: int
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    batchnorm: bool = False
    skip: bool = False

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ConfigError(f"layer width must be >= 1, got {self.width}")
        if self.kind != "fc" and (self.kernel < 1 or self.stride < 1 or self.padding < 0):
            raise ConfigError(
                f"{self.kind} layer needs kernel >= 1, stride >= 1, padding >= 0, got "
                f"kernel={self.kernel} stride={self.stride} padding={self.padding}"
            )
        if self.skip and self.kind != "fc":
            raise ConfigError("SKIP is supported on FC layers only")

    def __str__(self) -> str:
        if self.kind == "fc":
            text = f"FC_{self.width}"
        else:
            text = f"{self.kind.upper()}_{self.width}_{self.kernel}_{self.stride}_{self.padding}"
        return text + "_BN" * self.batchnorm + "_SKIP" * self.skip


_SPATIAL = ("kernels", "kernel size", "stride", "padding")
_FIELDS = {"FC": ("units",), "CONV": _SPATIAL, "LC": _SPATIAL}
_MODIFIERS = ("BN", "SKIP")


def parse_topology(text: str) -> tuple[LayerSpec, ...]:
    """Parse a topology string; a malformed one raises `ConfigError` naming the token."""
    tokens = text.strip().split("_")
    layers: list[LayerSpec] = []
    i = 0
    while i < len(tokens):
        head = tokens[i].upper()
        if head not in _FIELDS:
            raise ConfigError(
                f"topology {text!r}: token {i + 1} is {tokens[i]!r}, expected FC, CONV or LC"
            )
        names = _FIELDS[head]
        values = []
        for j, name in enumerate(names, start=1):
            if i + j >= len(tokens) or not (tokens[i + j].isascii() and tokens[i + j].isdigit()):
                got = repr(tokens[i + j]) if i + j < len(tokens) else "end of string"
                raise ConfigError(
                    f"topology {text!r}: {head} needs an integer {name} at token {i + j + 1}, "
                    f"got {got}"
                )
            values.append(int(tokens[i + j]))
        i += 1 + len(names)
        modifiers = set()
        while i < len(tokens) and tokens[i].upper() in _MODIFIERS:
            modifiers.add(tokens[i].upper())
            i += 1
        if head != "FC" and layers and layers[-1].kind == "fc":
            raise ConfigError(f"topology {text!r}: {head} layers must come before FC layers")
        layers.append(
            LayerSpec(
                head.lower(),  # type: ignore[arg-type]
                *values,
                batchnorm="BN" in modifiers,
                skip="SKIP" in modifiers,
            )
        )
    if not layers or layers[-1].kind != "fc":
        raise ConfigError(f"topology {text!r}: the last layer must be FC (the output layer)")
    if layers[-1].batchnorm or layers[-1].skip:
        raise ConfigError(f"topology {text!r}: the output layer takes no BN or SKIP")
    return tuple(layers)


def format_topology(layers: tuple[LayerSpec, ...]) -> str:
    return "_".join(str(layer) for layer in layers)
