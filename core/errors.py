"""The base of every error a user can cause (bad flag, missing file, unknown run).

The CLI and the app print these as one line; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input; str(exc) is a one-line explanation."""


class ConfigError(UserError, ValueError):
    """A bad setting; the message is one line naming the field."""


def one_line(exc: BaseException, typed: bool | None = None, limit: int = 0) -> str:
    """An exception as one line for a log, a store cell or a page: the first line of its message.

    `typed` None: bare for a UserError (its message is written for the user), else prefixed with
    the exception's type, so a bug says what broke; True or False force either. A message that is
    empty gives the type's name. `limit` > 0 trims the line to that many characters."""
    text = str(exc).strip().splitlines()
    with_type = not isinstance(exc, UserError) if typed is None else typed
    if not text:
        msg = type(exc).__name__
    else:
        msg = f"{type(exc).__name__}: {text[0]}" if with_type else text[0]
    return msg if limit <= 0 or len(msg) <= limit else msg[: limit - 3] + "..."
