"""plasticore: train with gradient-free learning rules, build the learning core, measure it."""

__version__ = "0.1.0"
