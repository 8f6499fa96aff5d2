"""The dataset field's inline check in both forms, from core.data.check.

One place for both, so the Search and Train forms accept exactly what the CLI and the
loaders accept (the forms once had their own spec parsing, and it disagreed with core's).
"""

from __future__ import annotations

from core.data.check import check_data
from core.errors import UserError
from ui.errors import one_line


def data_problem(task: str, spec: str, search: bool) -> str:
    """One line if the spec does not parse or names local files that are not there, else ''.

    The same check the CLI and the app's Start run before a run or job is recorded; a
    download can still fail later, when the data is loaded.
    """
    try:
        check_data(spec, task, search)
    except UserError as exc:
        return one_line(exc)
    return ""
