"""Built-in dataset plugins (installed as ``bench.datasets``)."""
