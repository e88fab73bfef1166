"""The one exception type for user mistakes: the CLI prints its message without a traceback."""


class BLAError(ValueError):
    """Bad input from a user (unknown name, wrong shape, unwritable folder, …) with a clear message."""
