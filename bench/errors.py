"""Exceptions that carry a message meant for the user."""


class BenchError(Exception):
    """A problem with the user's input or environment; the CLI prints it as one line and exits 2."""


class Unavailable(BenchError):
    """A method or metric cannot run here (e.g. pretrained weights are missing).

    The harness records the run as ``skipped`` (methods) or the metric as ``unavailable``, with
    this message as the reason, and goes on with everything else.
    """
