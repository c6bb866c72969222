"""The one exception a user sees: a one-line message naming the file or option and what to do."""


class DucklingError(Exception):
    """Bad input or a missing prerequisite; tasks print it as one line and exit non-zero."""
