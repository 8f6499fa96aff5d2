"""Dataset specs: the one parser from the text a user types (`--data`, a form field, a stored
config) to a typed value that the loaders, the start checks and both forms take.

A spec is `SOURCE` or `SOURCE:PATH`. Which sources need, allow or refuse a path, and which
task each serves, is declared once in SOURCES, so help text, error messages and the parser
cannot drift apart (they once did: the search's start check refused `ptb-proxy:PATH`
although the loader took it). This module reads no files: `core.data.check` does the cheap
look at the disk before a run or job is recorded, and the loaders read the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.errors import UserError


class DataError(UserError, ValueError):
    """A dataset problem the user can fix; the message is one line that says what and how.

    A UserError so the CLI and the app print it as one line instead of a traceback. Image and
    corpus loaders raise it (or CorpusError, a kind of it) for data that cannot load.
    """


class DataSpecError(DataError):
    """A spec that names no known dataset; the message lists the forms that would work."""


class Source(StrEnum):
    """Where a dataset comes from; the value is the spec's prefix."""

    DIGITS = "digits"
    CIFAR10 = "cifar10"
    FOLDER = "folder"
    EMBEDDED = "embedded"
    PTB = "ptb"
    PTB_PROXY = "ptb-proxy"


PTB_VOCAB = 10_000  # Mikolov's Penn Treebank vocabulary: the LM the published RNN cells were measured in


@dataclass(frozen=True)
class SourceRule:
    """What a source is for: its task, its path rule, and whether the search may use it."""

    task: str  # "cnn" (images) or "rnn" (text)
    path: str  # "none", "optional" (absent: download into the cache) or "required"
    search: bool  # False: final training only
    help: str


SOURCES: dict[Source, SourceRule] = {
    Source.DIGITS: SourceRule("cnn", "none", True, "scikit-learn's bundled 8x8 digits (offline)"),
    Source.CIFAR10: SourceRule("cnn", "optional", True, "CIFAR-10 python batches (no path: download)"),
    Source.FOLDER: SourceRule("cnn", "required", False, "an image folder with class sub-folders"),
    Source.EMBEDDED: SourceRule("rnn", "none", True, "a corpus from Python's own docs (offline)"),
    Source.PTB: SourceRule("rnn", "optional", True, "a Penn Treebank directory (no path: download)"),
    Source.PTB_PROXY: SourceRule("rnn", "optional", True, "the official search's PTB proxy cut"),
}


@dataclass(frozen=True)
class DataSpec:
    """A parsed dataset spec: a source and, for sources that take one, a path."""

    source: Source
    path: Path | None = None

    @property
    def task(self) -> str:
        return SOURCES[self.source].task

    @property
    def downloads(self) -> bool:
        """True when the data comes from the cache or the network, not from a user's path."""
        return self.path is None and SOURCES[self.source].path == "optional"

    def __str__(self) -> str:
        return self.source.value if self.path is None else f"{self.source.value}:{self.path}"


def spec_forms(task: str | None = None, search: bool = False) -> list[str]:
    """The accepted forms (`cifar10`, `cifar10:PATH`, ...), for help text and error messages."""
    forms: list[str] = []
    for source, rule in SOURCES.items():
        if (task and rule.task != task) or (search and not rule.search):
            continue
        if rule.path != "required":
            forms.append(source.value)
        if rule.path != "none":
            forms.append(f"{source.value}:PATH")
    return forms


def parse_data_spec(text: str | DataSpec, task: str | None = None, search: bool = False) -> DataSpec:
    """The typed spec of `text`; one line naming the valid forms when it is not one of them.

    `task` limits the sources to that task's (a corpus is no dataset for a CNN), `search` to
    those a proxy search can train on. For RNNs a bare directory path still means `ptb:PATH`,
    as the training form's help has always said.
    """
    if isinstance(text, DataSpec):
        spec = text
    else:
        spec = _parse(str(text or "").strip(), task)
    rule = SOURCES[spec.source]
    if (task and rule.task != task) or (search and not rule.search):
        raise _unknown(str(spec), task, search)
    return spec


def _parse(text: str, task: str | None) -> DataSpec:
    name, sep, rest = text.partition(":")
    try:
        source = Source(name)
    except ValueError:
        if task in (None, "rnn") and ("/" in text or Path(text).expanduser().is_dir()):
            return DataSpec(Source.PTB, Path(text).expanduser())
        raise _unknown(text, task, False) from None
    rule, path = SOURCES[source], rest.strip()
    if not path and rule.path == "required":
        raise DataSpecError(f"{source.value}: needs a path, e.g. {source.value}:~/images ({rule.help})")
    if sep and not path and rule.path == "optional":
        raise _unknown(text, task, False)
    if sep and rule.path == "none":
        raise DataSpecError(f"{source.value} takes no path; use plain {source.value!r}")
    return DataSpec(source, Path(path).expanduser() if path else None)


def _unknown(text: str, task: str | None, search: bool) -> DataSpecError:
    what = "corpus" if task == "rnn" else "dataset"
    return DataSpecError(f"unknown {what} {text!r}; use one of: {', '.join(spec_forms(task, search))}")
