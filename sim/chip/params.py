"""The core's integer parameters: initial weights, and their file with the LFSR state.

A parameter file (`.npz`) carries the spec it was made for (as TOML text), so loading it
under another spec is refused instead of silently misread.
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


def save_params(
    path: str | Path,
    spec: CoreSpec,
    weights: list[np.ndarray],
    lfsr: int,
    meta: dict | None = None,
) -> None:
    """Write weights, LFSR state and JSON `meta` (e.g. a training history) in one file, so
    that they can never disagree after an interruption."""
    arrays = {f"w{k}": np.asarray(w, dtype=np.int64) for k, w in enumerate(weights)}
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


def load_params(path: str | Path, spec: CoreSpec) -> tuple[list[np.ndarray], int, dict]:
    """Weights, LFSR state and meta from `path`, refused unless written for `spec`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            saved = spec_from_toml(str(data["spec"]), str(path))
            weights = [data[f"w{k}"] for k in range(len(spec.layer_sizes) - 1)]
            lfsr = int(data["lfsr"])
            meta = json.loads(str(data["meta"]))
    except (OSError, KeyError, ValueError) as error:
        raise ConfigError(f"{path}: not a plasticore parameter file ({error})") from error
    if saved != spec:
        raise ConfigError(f"{path}: parameters were written for another spec ({saved.name!r})")
    return check_weights(spec, weights), lfsr, meta


def at_width(
    spec: CoreSpec, weights: list[np.ndarray], bits: int
) -> tuple[CoreSpec, list[np.ndarray]]:
    """The same core at another weight width: weights, thresholds and learning-rate shifts
    scaled by `2^s` so the network's real values stay put.

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
