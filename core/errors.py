"""The base of every error a user can cause (bad flag, missing file, unknown run).

The CLI and the app print these as one line; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input; str(exc) is a one-line explanation."""


class ConfigError(UserError, ValueError):
    """A bad setting; the message is one line naming the field."""
