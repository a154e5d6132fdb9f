"""The fixed-point world: number formats, saturating arithmetic, rounding, LFSRs, `CoreSpec`.

Bottom room of the dependency graph: it imports numpy only, and every other room may
import it. The one exception is `quant.qat` (brevitas QAT layers, torch), which nothing in
`quant` imports; `quant.convert`, the float → integer conversion, stays numpy-only.
"""
