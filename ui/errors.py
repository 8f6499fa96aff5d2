"""User errors as one line on the page, never a traceback.

core raises core.errors.UserError subclasses for anything a user can cause (bad genotype
file, unknown run, missing data); anything else is a bug and keeps Streamlit's traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import streamlit as st

from core.errors import UserError
from core.errors import one_line as core_one_line


def one_line(exc: BaseException) -> str:
    """The message's first line, as the page shows it (no type prefix: core.errors.one_line)."""
    return core_one_line(exc, typed=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a UserError raised inside the block as st.error and carry on with the page."""
    try:
        yield
    except UserError as exc:
        st.error(one_line(exc), icon=":material/error:")


def report(message_key: str, action: Callable[[], object], done: str) -> None:
    """For a button's callback: run `action` and leave `done`, or the user error's one line,
    in `message_key` for the page to show on the rerun the click starts."""
    try:
        action()
        st.session_state[message_key] = done
    except UserError as exc:
        st.session_state[message_key] = one_line(exc)
