"""gridcore: an engine for grid-based city management (网格化城市管理)."""

__version__ = "0.1.0"
