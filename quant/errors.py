"""Error types shared by every room.

They live in the bottom room (`quant`) so that `sim`, `rtl`, `firmware`, `hw_reports`
and the CLI can all raise and catch them without importing each other. The CLI turns any
`PlasticoreError` into one line on stderr and a non-zero exit; anything else is a bug
and keeps its traceback.
"""


class PlasticoreError(Exception):
    """A problem the user can fix: bad argument, bad file, bad configuration."""


class ConfigError(PlasticoreError, ValueError):
    """An invalid configuration value; the message names the field and the allowed range."""


class DatasetError(PlasticoreError):
    """A dataset that cannot be loaded; the message names the file and what is wrong."""


class BusError(PlasticoreError):
    """The core refused a bus cycle (`err`), or the link to it failed; the message says which."""
