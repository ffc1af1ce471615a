"""colorbench: train image-colorization methods under equal budgets, score them, publish leaderboards."""

__version__ = "0.1.0"
