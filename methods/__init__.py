"""Built-in colorization methods (installed as ``bench.methods``). Each module is a plugin."""
