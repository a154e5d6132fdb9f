"""Reproducible measurements; each writes JSON and a Markdown table."""
