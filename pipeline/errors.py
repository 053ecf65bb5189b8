"""Errors that reach the user as one line, naming the path and what is wrong."""


class PipelineError(Exception):
    """Bad input or configuration the user can act on; the CLI prints it and exits 2."""
