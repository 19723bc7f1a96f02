"""The one base class for mistakes a user can fix: the CLI and the demo print these, no traceback."""


class UserError(Exception):
    """Bad input, a missing or stale artifact: the message says what and where."""
