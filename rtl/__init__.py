"""Amaranth hardware of the learning core and its cocotb co-simulation harness.

Imports `quant` only, never `sim` or torch, so that co-simulation against the golden
model is an independent check.
"""
