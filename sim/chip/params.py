"""The core's integer parameters: initial weights and front-end kernels, and their file
with the LFSR state.

A parameter file (`.npz`) carries the spec it was made for (as TOML text), so loading it
under another spec is refused instead of silently misread. A core with the convolutional
front end keeps its fixed kernels in the same file: they are parameters the host loads,
like the weights, so trained (converted) kernels travel the same way as random ones.
"""

import json
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from quant.atomic import atomic_write
from quant.errors import ConfigError
from quant.fixed import shift_right
from quant.spec import CoreSpec, spec_from_toml, spec_to_toml
from sim.chip.golden import check_weights

INITS = ("random", "zero")


def initial_weights(spec: CoreSpec, init: str = "random", seed: int = 0) -> list[np.ndarray]:
    """Weights to start on-chip learning from.

    `random`: uniform integers in `[−r, r]`, `r = 2^(weight_bits − 4)` (at least 1): a
    sixteenth of the range, leaving headroom to learn; the shipped specs' thresholds are
    set for it. `zero`: all zeros (DRTP learns from zero; LFP cannot, its updates scale
    with |w|).
    """
    if init not in INITS:
        raise ConfigError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    sizes = spec.layer_sizes
    if init == "zero":
        return [np.zeros((sizes[k], sizes[k + 1]), dtype=np.int64) for k in range(len(sizes) - 1)]
    bound = 1 << max(0, spec.weight_bits - 4)
    rng = np.random.default_rng(seed)
    return [
        rng.integers(-bound, bound + 1, size=(sizes[k], sizes[k + 1]), dtype=np.int64)
        for k in range(len(sizes) - 1)
    ]


def initial_kernels(spec: CoreSpec, seed: int = 0) -> np.ndarray:
    """Fixed random kernels `[C_out, C_in, k, k]` for the front end: uniform over the whole
    `kernel_bits` range, since they never learn and need no headroom. Drawn from their own
    stream (seed sequence `[seed, 1]`), so one seed gives weights and kernels unrelated."""
    if not spec.conv:
        raise ConfigError(f"kernels: spec {spec.name!r} has no convolutional front end")
    top = 1 << (spec.kernel_bits - 1)
    k = spec.conv_kernel
    shape = (spec.conv_channels, spec.image_shape[0], k, k)
    return np.random.default_rng([seed, 1]).integers(-top, top, size=shape, dtype=np.int64)


def save_params(
    path: str | Path,
    spec: CoreSpec,
    weights: list[np.ndarray],
    lfsr: int,
    meta: dict | None = None,
    kernels: np.ndarray | None = None,
) -> None:
    """Write weights, the front end's kernels (required with one), LFSR state and JSON
    `meta` (e.g. a training history) in one file, so that they can never disagree after an
    interruption."""
    arrays = {f"w{k}": np.asarray(w, dtype=np.int64) for k, w in enumerate(weights)}
    if spec.conv or kernels is not None:
        arrays["kernels"] = spec.kernel_array(kernels)
    text = json.dumps(meta or {})

    def write(handle: BinaryIO) -> None:
        np.savez(
            handle,
            spec=np.array(spec_to_toml(spec)),
            lfsr=np.array(lfsr),
            meta=np.array(text),
            **arrays,
        )

    atomic_write(Path(path), write)


def _read(path: Path, spec: CoreSpec, names: list[str]) -> dict[str, np.ndarray]:
    """The arrays `names` of a parameter file, refused unless it was written for `spec`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            saved = spec_from_toml(str(data["spec"]), str(path))
            arrays = {name: data[name] for name in names}
    except (OSError, KeyError, ValueError) as error:
        raise ConfigError(f"{path}: not a plasticore parameter file ({error})") from error
    if saved != spec:
        raise ConfigError(f"{path}: parameters were written for another spec ({saved.name!r})")
    return arrays


def load_params(path: str | Path, spec: CoreSpec) -> tuple[list[np.ndarray], int, dict]:
    """Weights, LFSR state and meta from `path`, refused unless written for `spec`; a front
    end's kernels come from `load_kernels`."""
    names = [f"w{k}" for k in range(len(spec.layer_sizes) - 1)]
    arrays = _read(Path(path), spec, [*names, "lfsr", "meta"])
    weights = check_weights(spec, [arrays[name] for name in names])
    return weights, int(arrays["lfsr"]), json.loads(str(arrays["meta"]))


def load_kernels(path: str | Path, spec: CoreSpec) -> np.ndarray:
    """The front end's fixed kernels from `path`, refused unless written for `spec`."""
    if not spec.conv:
        raise ConfigError(f"kernels: spec {spec.name!r} has no convolutional front end")
    return spec.kernel_array(_read(Path(path), spec, ["kernels"])["kernels"])


def at_width(
    spec: CoreSpec, weights: list[np.ndarray], bits: int
) -> tuple[CoreSpec, list[np.ndarray]]:
    """The same core at another weight width: weights, thresholds and learning-rate shifts
    scaled by `2^s` so the network's real values stay put. A convolutional front end is
    left as it is: its kernels have their own width, and its spikes do not depend on `s`.

    Narrower: `s = bits − weight_bits` (weights rounded to nearest, coarser). Wider: the
    extra bits become fraction bits, `s = min(bits − weight_bits, min(lr_shifts))` (a
    learning-rate shift cannot go below zero); membrane and accumulator widen by `s`.
    """
    s = bits - spec.weight_bits
    if s > 0 and spec.lr_shifts:
        s = min(s, *spec.lr_shifts)
    scale = (lambda v: v << s) if s >= 0 else (lambda v: max(1, int(shift_right(v, -s, "nearest"))))
    new = replace(
        spec,
        weight_bits=bits,
        thresholds=tuple(scale(t) for t in spec.thresholds),
        lr_shifts=tuple(lr - s for lr in spec.lr_shifts),
        membrane_bits=spec.membrane_bits + max(s, 0),
        acc_bits=spec.acc_bits + max(s, 0),
    )
    scaled = [
        new.weight.saturate(w << s if s >= 0 else shift_right(w, -s, "nearest")) for w in weights
    ]
    return new, scaled
