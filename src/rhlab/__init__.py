"""rhlab: reward hacking → emergent misalignment, end to end."""

__version__ = "0.1.0"
