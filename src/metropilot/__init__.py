"""metropilot: run a metropolis public space from one connected control room."""

__version__ = "0.1.0"
