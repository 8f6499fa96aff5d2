"""The PTB proxy corpus of the official AutoShrink RNN search (`data/penn_proxy`): the first
4,000 / 300 / 300 lines of PTB's train / valid / test, one dictionary over all three files.

The official driver searches on this proxy, not on full PTB, and builds its dictionary
(`data.Corpus`) by adding the words of train, then valid, then test in order of first
appearance, so no proxy word is ever <unk>: 7,002 words, 88,832 training tokens with <eos>.
Taking the first lines of whatever PTB-format files a folder holds serves both cases the
user has: a full PTB directory (the proxy is derived) and a folder that already holds the
proxy files (their first 4,000 / 300 / 300 lines are the whole files). Reading and
downloading stay in corpus.py; this module only cuts and indexes.
"""

from __future__ import annotations

EOS = "<eos>"
PROXY_LINES = {"train": 4000, "valid": 300, "test": 300}


def proxy_words(text: str, lines: int) -> list[str]:
    """Words of the first `lines` lines, each line's words then <eos> (official tokenize():
    `line.split() + ['<eos>']`, so a blank line still gives one <eos>)."""
    words: list[str] = []
    for line in text.splitlines()[:lines]:
        words.extend(line.split())
        words.append(EOS)
    return words


def union_vocab(splits: dict[str, list[str]]) -> list[str]:
    """Every word of train, then valid, then test, in order of first appearance."""
    seen: dict[str, None] = {}
    for s in ("train", "valid", "test"):
        seen.update(dict.fromkeys(splits[s]))
    return list(seen)


def proxy_note(name: str, splits: dict[str, list[str]], vocab_size: int) -> str:
    sizes = ", ".join(f"{s} {len(w):,}" for s, w in splits.items())
    lines = " / ".join(f"{n:,}" for n in PROXY_LINES.values())
    return (
        f"{name}: the first {lines} lines of PTB train / valid / test; {sizes} tokens (with <eos>); "
        f"dictionary over all three files: {vocab_size:,} words"
    )
