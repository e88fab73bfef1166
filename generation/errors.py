"""The one exception type for user mistakes: its message is a single sentence shown without traceback."""


class GenerationError(Exception):
    """Bad input or an impossible request; the message names the file, field or value at fault."""
