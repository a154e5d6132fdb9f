"""Verilator lint: the generated core is clean beyond the documented waivers, and the
waivers are narrow enough that a real defect still shows."""

import pytest

from quant.spec import load_spec
from rtl.emit import write_core
from rtl.lint import lint
from rtl.simulators import SimulatorMissing, simulator_env
from tests.rtl.random_specs import random_spec

try:
    simulator_env("verilator")
except SimulatorMissing as missing:
    pytest.skip(str(missing), allow_module_level=True)


@pytest.mark.parametrize(
    "name", ["configs/digits.toml", "configs/mnist.toml", "random:3", "random:12"]
)
def test_generated_core_lints_clean(name: str, tmp_path) -> None:
    seed = name.removeprefix("random:")
    spec = random_spec(int(seed)) if seed != name else load_spec(name)
    source, _ = write_core(spec, tmp_path)
    assert lint(source, "plasticore_core", tmp_path) == []


def test_waivers_leave_real_defects_visible(tmp_path) -> None:
    source = tmp_path / "broken.v"
    source.write_text(
        "module broken(input wire clk, output wire [3:0] y);\n"
        "  wire [3:0] floating;\n"
        "  reg [1:0] narrow;\n"
        "  always @(posedge clk) narrow <= y;\n"
        "  assign y = floating;\n"
        "endmodule\n"
    )
    warnings = "\n".join(lint(source, "broken", tmp_path))
    assert "UNDRIVEN" in warnings
    assert "WIDTHTRUNC" in warnings
