"""The project-wide error types: mistakes a user can fix. The CLI and the demo print
these as one message, never a traceback. Every other package builds on this one."""


class UserError(Exception):
    """Bad input, a missing or stale artifact: the message says what and where."""


class DataError(UserError):
    """A user's data file is unusable; the message names the file, row and column."""


class ParityError(UserError):
    """An exported model does not reproduce its checkpoint (or was exported from another one,
    or describes itself differently); `report` holds every measurement that led there."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report
