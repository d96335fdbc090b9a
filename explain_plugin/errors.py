"""User-facing errors."""


class CliError(Exception):
    """A user error: printed as one line, exit code 1."""
