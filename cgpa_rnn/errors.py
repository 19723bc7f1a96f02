"""The project-wide error types: mistakes a user can fix. The CLI and the demo print
these as one message, never a traceback. Every other package builds on this one."""


class UserError(Exception):
    """Bad input, a missing or stale artifact: the message says what and where."""


class DataError(UserError):
    """A user's data file is unusable; the message names the file, row and column."""
