"""The fixed-point world: number formats, saturating arithmetic, rounding, LFSRs, `CoreSpec`.

Bottom room of the dependency graph: it imports numpy only, and every other room may
import it.
"""
