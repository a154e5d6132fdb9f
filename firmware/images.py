"""Memory images: a core's weights, projection ROMs and seeds as `$readmemh` files, and back.

An image directory holds `spec.toml` and one file per initialised memory, in the format
Verilog's `$readmemh` reads: one memory word per line, in hexadecimal, exactly the word's
width in digits, word 0 first; lane 0 is the word's lowest bits (`weights<k>.hex`: `lanes`
two's-complement weights of `weight_bits` each, or `weights<k>_<b>.hex` for bank b of a
banked layer, `LayerGeometry.banks`; `projection<k>.hex`: one bit per lane,
1 for +1). `seeds.hex` lists the rounding LFSR's seed, then for a DRTP core that
regenerates its projections, the seed of every (hidden layer, label), layer-major.

The projections and seeds follow from the spec, so reading an image checks them against
it: an image edited by hand, or written for another spec, is refused with the file and
line that differ. The Verilog of `rtl.emit.verilog_text(..., images=True)` loads the
memories from these files, so one bitstream-ready core can take other trained weights
without regenerating the RTL.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from quant.atomic import atomic_write_text
from quant.errors import PlasticoreError
from quant.spec import CoreSpec, load_spec, spec_to_toml
from quant.tables import projection_seed
from rtl.core import projection_words, weight_words
from rtl.geometry import Geometry

SPEC_FILE = "spec.toml"
SEEDS_FILE = "seeds.hex"


class ImageError(PlasticoreError):
    """A malformed or inconsistent image file; the message names the file and line."""


def _hex_lines(words: Sequence[int], bits: int) -> str:
    digits = -(-bits // 4)
    return "".join(f"{word:0{digits}x}\n" for word in words)


def _pack(lanes: Sequence[int], bits: int) -> int:
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (n * bits) for n, v in enumerate(lanes))


def _unpack(word: int, lanes: int, bits: int) -> list[int]:
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    values = [(word >> (n * bits)) & mask for n in range(lanes)]
    return [v - (1 << bits) if v & sign else v for v in values]


def seed_words(spec: CoreSpec) -> list[int]:
    """The rounding LFSR seed, then the projection seeds a DRTP-LFSR core regenerates from."""
    words = [spec.seed]
    if spec.rule == "drtp" and spec.projection == "lfsr":
        words += [
            projection_seed(spec, k, c)
            for k in range(len(spec.hidden))
            for c in range(spec.classes)
        ]
    return words


def image_files(spec: CoreSpec, weights: Sequence[np.ndarray]) -> dict[str, str]:
    """File name → contents of the image of `spec` with `weights` (`[n_in, n_out]` each)."""
    files = {SPEC_FILE: spec_to_toml(spec)}
    bits = spec.weight_bits
    for layer, w in zip(Geometry(spec).layers, weights, strict=True):
        words = [_pack(row, bits) for row in weight_words(spec, np.asarray(w))]
        for name, start, depth in layer.banks:
            files[f"{name}.hex"] = _hex_lines(words[start : start + depth], spec.lanes * bits)
    if spec.rule == "drtp" and spec.projection == "rom":
        for k in range(len(spec.hidden)):
            files[f"projection{k}.hex"] = _hex_lines(projection_words(spec, k), spec.lanes)
    files[SEEDS_FILE] = _hex_lines(seed_words(spec), spec.lfsr_width)
    return files


def write_images(spec: CoreSpec, weights: Sequence[np.ndarray], out_dir: str | Path) -> list[Path]:
    """Write the image files (each atomically) into `out_dir`; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        atomic_write_text(out / name, text) for name, text in image_files(spec, weights).items()
    ]


def _read_words(path: Path, depth: int, bits: int) -> list[int]:
    if not path.is_file():
        raise ImageError(f"{path}: missing")
    lines = path.read_text().split()
    if len(lines) != depth:
        raise ImageError(f"{path}: {len(lines)} words, the memory has {depth}")
    digits = -(-bits // 4)
    words = []
    for n, line in enumerate(lines, 1):
        try:
            word = int(line, 16)
        except ValueError:
            raise ImageError(f"{path}:{n}: {line!r} is not hexadecimal") from None
        if len(line) != digits or word >> bits:
            raise ImageError(f"{path}:{n}: {line!r} is not a {bits}-bit word of {digits} digits")
        words.append(word)
    return words


def _check_derived(path: Path, found: list[int], expected: list[int]) -> None:
    for n, (a, b) in enumerate(zip(found, expected, strict=True), 1):
        if a != b:
            raise ImageError(f"{path}:{n}: 0x{a:x} differs from the spec's 0x{b:x}")


def read_images(image_dir: str | Path) -> tuple[CoreSpec, list[np.ndarray]]:
    """The spec and integer weights of an image directory, every file checked."""
    root = Path(image_dir)
    if not (root / SPEC_FILE).is_file():
        raise ImageError(f"{root / SPEC_FILE}: missing (not an image directory)")
    spec = load_spec(root / SPEC_FILE)
    lanes, bits = spec.lanes, spec.weight_bits
    weights = []
    for layer in Geometry(spec).layers:
        rows = []
        for name, start, depth in layer.banks:
            path = root / f"{name}.hex"
            for line, word in enumerate(_read_words(path, depth, lanes * bits), 1):
                values = _unpack(word, lanes, bits)
                if any(values[layer.real_lanes((start + line - 1) % layer.blocks) :]):
                    raise ImageError(f"{path}:{line}: nonzero weight in a padding lane")
                rows.append(values)
        padded = np.array(rows, dtype=np.int64).reshape(layer.n_in, layer.blocks * lanes)
        weights.append(padded[:, : layer.n_out])
    if spec.rule == "drtp" and spec.projection == "rom":
        for k in range(len(spec.hidden)):
            path, expected = root / f"projection{k}.hex", projection_words(spec, k)
            _check_derived(path, _read_words(path, len(expected), lanes), expected)
    path, expected = root / SEEDS_FILE, seed_words(spec)
    _check_derived(path, _read_words(path, len(expected), spec.lfsr_width), expected)
    return spec, weights
