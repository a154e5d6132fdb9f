"""Memory images: spec + weights → `$readmemh` files → spec + weights, and bad files refused."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from firmware.images import ImageError, image_files, read_images, write_images
from quant.spec import load_spec
from rtl.emit import image_memories, verilog_text
from rtl.geometry import BANK_WORDS
from sim.chip.params import initial_weights
from tests.rtl.random_specs import banked_spec, random_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _weights(spec, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.integers(spec.weight.min_int, spec.weight.max_int + 1, (a, b))
        for a, b in zip(spec.layer_sizes, spec.layer_sizes[1:], strict=False)
    ]


@pytest.mark.parametrize("seed", [1, 4, 11, 13, 22])
def test_round_trip(tmp_path: Path, seed: int) -> None:
    """Random specs: LIF/hard-tanh, DRTP ROM and LFSR, LFP, 1–5 lanes with padding."""
    spec = random_spec(seed)
    weights = _weights(spec, seed)
    weights[0][0, 0] = spec.weight.min_int  # the sign bit of a lane survives
    write_images(spec, weights, tmp_path)
    spec_back, weights_back = read_images(tmp_path)
    assert spec_back == spec
    for a, b in zip(weights_back, weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_digits_image_layout(tmp_path: Path) -> None:
    """One word per line, lane 0 in the lowest bits, two's complement."""
    spec = load_spec(CONFIGS / "digits.toml")
    weights = initial_weights(spec, "zero")
    weights[0][0, 0], weights[0][0, 1], weights[0][1, 8] = -1, 2, 5
    files = image_files(spec, weights)
    lines = files["weights0.hex"].split()
    blocks = spec.blocks(spec.hidden[0])
    assert len(lines) == spec.inputs * blocks
    assert lines[0] == "00000000000002ff"
    assert lines[blocks + 1] == "0000000000000005"
    assert files["seeds.hex"].split()[0] == f"{spec.seed:08x}"
    assert len(files["seeds.hex"].split()) == 1 + spec.classes * len(spec.hidden)


def _bump_first_word(text: str) -> str:
    first, rest = text.split("\n", 1)
    return first[:-1] + ("2" if first[-1] == "1" else "1") + "\n" + rest


def _corrupt(tmp_path: Path, name: str, edit) -> str:
    path = tmp_path / name
    path.write_text(edit(path.read_text()))
    with pytest.raises(ImageError) as error:
        read_images(tmp_path)
    return str(error.value)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("weights0.hex", lambda t: "zz" + t[t.index("\n") :], "not hexadecimal"),
        ("weights0.hex", lambda t: "\n".join(t.split()[:-1]), "words, the memory has"),
        ("weights1.hex", lambda t: "1" + t, "-bit word of"),
        ("seeds.hex", lambda t: _bump_first_word(t), "differs from the spec"),
        ("projection0.hex", lambda t: t.replace("0", "1", 1), "differs from the spec"),
    ],
)
def test_malformed_images_refused(tmp_path: Path, name, edit, message) -> None:
    spec = random_spec(4)  # DRTP with a projection ROM, 3 lanes: padding in every layer
    write_images(spec, _weights(spec), tmp_path)
    text = _corrupt(tmp_path, name, edit)
    assert name in text and message in text


def test_padding_lane_and_missing_files_refused(tmp_path: Path) -> None:
    spec = random_spec(4)
    write_images(spec, _weights(spec), tmp_path)
    last = len(spec.hidden)
    width = spec.lanes * spec.weight_bits // 4 + (spec.lanes * spec.weight_bits % 4 > 0)
    top = f"{1 << (spec.lanes * spec.weight_bits - 1):0{width}x}"  # a weight in lane 2 of 3
    assert spec.layer_sizes[-1] % spec.lanes, "the case needs a padding lane"
    text = _corrupt(
        tmp_path,
        f"weights{last}.hex",
        lambda t: "\n".join(
            [
                *t.split()[: spec.blocks(spec.classes) - 1],
                top,
                *t.split()[spec.blocks(spec.classes) :],
            ]
        ),
    )
    assert "padding lane" in text
    (tmp_path / f"weights{last}.hex").unlink()
    with pytest.raises(ImageError, match="missing"):
        read_images(tmp_path)
    with pytest.raises(ImageError, match="not an image directory"):
        read_images(tmp_path / "nowhere")


def test_verilog_loads_every_image_memory() -> None:
    """The image Verilog has one `$readmemh` per image file and no inline weights."""
    spec = random_spec(4)
    text = verilog_text(spec, _weights(spec), images=True)
    names = image_memories(spec)
    assert set(names) == {n.removesuffix(".hex") for n in image_files(spec, _weights(spec))} - {
        "spec.toml",
        "seeds",
    }
    for name in names:
        assert text.count(f'$readmemh("{name}.hex", {name});') == 1
        assert f"{name}[0] = " not in text


def test_banked_layer_images(tmp_path: Path) -> None:
    """A layer deeper than a bank is one file per bank, `weights<k>_<b>.hex`, of at most
    `BANK_WORDS` words each, in order; a padding weight is refused at its bank's line, and
    the Verilog loads each bank from its own file."""
    spec = banked_spec(1)  # 2 lanes, 72 rows into 144 classes: 5184 words, 3 banks
    spec = replace(spec, classes=spec.classes - 1)  # block 71 gets a padding lane
    weights = _weights(spec, 1)
    files = image_files(spec, weights)
    last = len(spec.hidden)
    banks = [f"weights{last}_{b}.hex" for b in range(3)]
    assert f"weights{last}.hex" not in files and set(banks) <= set(files)
    sizes = [len(files[name].split()) for name in banks]
    assert sizes[:2] == [BANK_WORDS] * 2 and sum(sizes) == spec.layer_sizes[-2] * 72
    write_images(spec, weights, tmp_path)
    _, back = read_images(tmp_path)
    np.testing.assert_array_equal(back[-1], weights[-1])
    # Bank 1 starts at word 2048, inside row 28, whose block 71 is word 2087: line 40.
    width = 2 * spec.weight_bits // 4
    top = f"{1 << (2 * spec.weight_bits - 1):0{width}x}"  # a weight in lane 1, padding
    text = _corrupt(tmp_path, banks[1], lambda t: "\n".join(_replaced(t.split(), 39, top)))
    assert f"{banks[1]}:40: nonzero weight in a padding lane" in text
    verilog = verilog_text(spec, weights, images=True)
    for name in banks:
        stem = name.removesuffix(".hex")
        assert verilog.count(f'$readmemh("{name}", {stem});') == 1


def _replaced(lines: list[str], index: int, line: str) -> list[str]:
    return [*lines[:index], line, *lines[index + 1 :]]
