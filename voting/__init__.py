"""The engine that runs the WSIS Prizes."""

__version__ = "0.1.0"
