"""Writing a file the user named with `--out`: never onto the run store, never over a file
without `--force`, and every refusal one line (a missing folder, a directory, no permission)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import UserError


class OutputError(UserError):
    """An --out path that cannot or must not be written; one line."""


def write_export(out: Path, text: str, store: Path, force: bool) -> None:
    """Write `text` to `out` atomically (temp file + rename) after the checks above."""
    target = out.expanduser()
    if _is_store_file(target, store):
        raise OutputError(f"--out {out} is the run store itself (or its journal); choose another file")
    if target.is_dir():
        raise OutputError(f"--out {out} is a directory; name a file, e.g. {target / 'cell.json'}")
    if not target.parent.is_dir():
        raise OutputError(f"--out {out}: folder {target.parent} does not exist")
    if target.exists() and not force:
        raise OutputError(f"--out {out} already exists; add --force to overwrite it")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write --out {out}: {exc.strerror or exc}") from None


def _is_store_file(target: Path, store: Path) -> bool:
    """The store, its WAL and shared-memory files, compared as resolved paths (symlinks too)."""
    store = store.resolve()
    guarded = {
        store,
        store.with_name(store.name + "-wal"),
        store.with_name(store.name + "-shm"),
        store.with_name(store.name + "-journal"),
    }
    if target.resolve() in guarded:
        return True
    return target.exists() and store.exists() and os.path.samefile(target, store)  # a hard link
