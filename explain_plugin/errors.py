"""User-facing errors."""


class CliError(Exception):
    """A user error: printed as one line, exit code 1."""


class Interrupted(CliError):
    """Ctrl-C during a run: printed as one line, exit code 130."""
