"""The cheap look at a dataset before a run or job is recorded: does what the spec names exist?

Start checks of the search and of final training call `check_data`, so a typo or a missing
folder is one line and leaves no failed run behind. It reads directory listings and the
corpus text files (small), never image batches; downloads are checked when they happen.
"""

from __future__ import annotations

from core.data.spec import DataSpec, Source, parse_data_spec


def check_data(spec: DataSpec | str, task: str | None = None, search: bool = False) -> DataSpec:
    """Refuse, in one line (a DataError), a spec whose local files are missing or unreadable.

    Returns the parsed spec so a caller checks and parses in one call.
    """
    spec = parse_data_spec(spec, task, search)
    if spec.path is None:
        return spec
    if spec.source is Source.CIFAR10:
        from core.data.images import check_cifar_dir

        check_cifar_dir(spec.path)
    elif spec.source is Source.FOLDER:
        from core.data.imagefolder import folder_layout

        folder_layout(spec.path)
    else:  # ptb:PATH and ptb-proxy:PATH read the same three files
        from core.data.corpus import check_ptb_dir

        check_ptb_dir(spec.path)
    return spec
