"""GloVe vectors in their plain-text format, for the RNN search's embedding initialisation.

The official search copies GloVe 6B-100d vectors into every candidate's embedding and draws
U(-0.5, 0.5) for words without one (searching/rnn/utils.py build_emb). GloVe is distributed
as text, one word and its d floats per line; the official code reads a pickle made from that
text. We read the text itself and never unpickle. Only the corpus's words are kept, so a
400k-word file costs one pass and a V x d tensor.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from core.errors import UserError

MISSING_RANGE = 0.5  # U(-0.5, 0.5) for words GloVe lacks (official build_emb)


class GloveError(UserError, ValueError):
    """A GloVe file that cannot be used; the message is one line."""


def glove_path(spec: str) -> Path:
    """The file of an `--embedding-init glove:PATH` value."""
    return Path(spec[len("glove:") :]).expanduser()


def check_glove_file(path: Path, dim: int) -> None:
    """One line (GloveError) unless `path` is a readable GloVe text file of `dim`-d vectors.

    Cheap, for the start check: only the first line is read (a word, then `dim` floats), so
    a missing, unreadable, binary or wrong-size file is refused before any run row exists
    instead of failing the run after its corpus has loaded."""
    if not path.is_file():
        raise GloveError(f"no GloVe file at {path}" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        with path.open(encoding="utf-8") as f:
            first = f.readline(1 << 20)
    except OSError as exc:
        raise GloveError(f"cannot read GloVe file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GloveError(f"{path} is not UTF-8 text; expected GloVe's plain-text format") from None
    word, _, rest = first.rstrip("\n").partition(" ")
    values = rest.split()
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        numbers = []
    if not word.strip() or not numbers:
        raise GloveError(f"{path} line 1: not GloVe text (expected a word and its numbers)")
    if len(numbers) != dim:
        raise GloveError(f"{path} line 1: {len(numbers)} values for {word!r}, expected {dim} (the embedding size)")


def read_glove(path: Path, vocab: list[str], dim: int) -> dict[str, list[float]]:
    """The vectors of `vocab`'s words found in the text file at `path`; each must have `dim` floats."""
    wanted, found = set(vocab), {}
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                word, _, rest = line.rstrip("\n").partition(" ")
                if word not in wanted or word in found:
                    continue
                values = rest.split()
                if len(values) != dim:
                    raise GloveError(
                        f"{path} line {n}: {len(values)} values for {word!r}, expected {dim} (the embedding size)"
                    )
                try:
                    found[word] = [float(v) for v in values]
                except ValueError:
                    raise GloveError(f"{path} line {n}: not GloVe text (non-numeric value)") from None
    except OSError as exc:
        raise GloveError(f"cannot read GloVe file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GloveError(f"{path} is not UTF-8 text; expected GloVe's plain-text format") from None
    return found


def glove_embedding(path: Path, vocab: list[str], dim: int, seed: int) -> tuple[Tensor, int]:
    """(V x dim embedding, words found): GloVe rows where the file has the word, U(+-0.5) drawn
    from `seed` elsewhere. One tensor for the whole search, as the official copies the same
    pretrained tensor into every candidate."""
    found = read_glove(path, vocab, dim)
    gen = torch.Generator().manual_seed(seed)
    emb = torch.empty(len(vocab), dim).uniform_(-MISSING_RANGE, MISSING_RANGE, generator=gen)
    for i, word in enumerate(vocab):
        if word in found:
            emb[i] = torch.tensor(found[word])
    return emb, len(found)
