"""Colorizer: bring color back to old black-and-white photos and film."""

__version__ = "0.1.0"
