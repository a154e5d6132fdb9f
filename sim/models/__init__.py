"""Network builders: topology strings, fully connected and convolutional networks."""

from sim.models.network import ACTIVATIONS, Block, BlockTrace, Network, NetworkConfig
from sim.models.topology import LayerSpec, format_topology, parse_topology

__all__ = [
    "ACTIVATIONS",
    "Block",
    "BlockTrace",
    "LayerSpec",
    "Network",
    "NetworkConfig",
    "format_topology",
    "parse_topology",
]
