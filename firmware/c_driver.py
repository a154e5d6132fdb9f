"""The C driver's sources for a spec: the generic `plasticore.c`/`.h` and the generated
`plasticore_regs.h`, written together so a firmware project copies one directory."""

import shutil
from pathlib import Path

from firmware.header import HEADER, c_header
from quant.atomic import atomic_write_text
from quant.spec import CoreSpec

C_SOURCES = Path(__file__).parent / "c"
C_FILES = ("plasticore.h", "plasticore.c")


def write_c_driver(spec: CoreSpec, out_dir: str | Path) -> Path:
    """Write the driver and `spec`'s header into `out_dir`; the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in C_FILES:
        shutil.copyfile(C_SOURCES / name, out / name)
    atomic_write_text(out / HEADER, c_header(spec))
    return out
