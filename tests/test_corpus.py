"""Corpus loading: PTB directories, the (mocked) PTB download, the embedded corpus."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from core.data import corpus as corpus_mod
from core.data.corpus import EOS, UNK, Corpus, CorpusError, batchify, load_corpus, tokenize_ptb_style
from core.data.spec import DataSpecError, spec_forms

SHARED_PTB = Path(__file__).parents[1] / ".." / "shared" / "data" / "ptb-proxy"

TRAIN = "the cat sat on the mat\nthe dog sat\n\n"
VALID = "the cat ran\n"
TEST = "a dog sat on the cat\n"


def _write_ptb(directory: Path, prefix: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, text in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        (directory / f"{prefix}{split}.txt").write_text(text, encoding="utf-8")
    return directory


def _words(c: Corpus, ids: torch.Tensor) -> list[str]:
    return [c.vocab[i] for i in ids.tolist()]


@pytest.mark.parametrize("prefix", ["", "ptb."])
def test_ptb_dir_both_namings_eos_and_unk(tmp_path: Path, prefix: str) -> None:
    d = _write_ptb(tmp_path / "ptb", prefix)
    for spec in (f"ptb:{d}", str(d)):
        c = load_corpus(spec)
        assert _words(c, c.train) == "the cat sat on the mat <eos> the dog sat <eos>".split()
        assert _words(c, c.valid) == ["the", "cat", UNK, EOS]  # 'ran' is not in train
        assert _words(c, c.test) == [UNK, "dog", "sat", "on", "the", "cat", EOS]
        assert UNK in c.vocab and EOS in c.vocab and c.vocab_size == len(set(c.vocab)) == 8
        assert c.train.dtype == torch.long and c.train.dim() == 1
        assert any("unk" in n for n in c.notes)


def test_ptb_dir_keeps_existing_unk(tmp_path: Path) -> None:
    d = _write_ptb(tmp_path / "p")
    (d / "train.txt").write_text("<unk> cat <unk>\n", encoding="utf-8")
    c = load_corpus(f"ptb:{d}")
    assert c.vocab.count(UNK) == 1 and _words(c, c.train) == [UNK, "cat", UNK, EOS]


def test_max_vocab_keeps_the_most_frequent(tmp_path: Path) -> None:
    c = load_corpus(f"ptb:{_write_ptb(tmp_path / 'p')}", max_vocab=3)
    # 'the' 3 times; '<eos>' and 'sat' tie at 2 and ties go by spelling ('<' sorts first)
    assert c.vocab == ["the", EOS, UNK]
    assert _words(c, c.train) == ["the", UNK, UNK, UNK, "the", UNK, EOS, "the", UNK, UNK, EOS]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_ptb_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found") as e:
        load_corpus(f"ptb:{tmp_path / 'nowhere'}")
    _one_line(e)
    d = _write_ptb(tmp_path / "a")
    (d / "test.txt").unlink()
    with pytest.raises(CorpusError, match="lacks test.txt"):
        load_corpus(f"ptb:{d}")
    with pytest.raises(CorpusError, match="no train.txt"):
        load_corpus(f"ptb:{tmp_path}")

    cases = {"empty": b"  \n\n", "binary": b"the cat\x00\x01\x02", "UTF-8": "the caf\u00e9\n".encode("latin-1")}
    for word, payload in cases.items():
        d = _write_ptb(tmp_path / word)
        (d / "valid.txt").write_bytes(payload)
        with pytest.raises(CorpusError, match=word) as e:
            load_corpus(f"ptb:{d}")
        assert "valid.txt" in _one_line(e)


def test_unknown_spec_names_the_options() -> None:
    with pytest.raises(DataSpecError, match="embedded, ptb, ptb:PATH"):
        load_corpus("wikitext")
    assert spec_forms("rnn") == ["embedded", "ptb", "ptb:PATH", "ptb-proxy", "ptb-proxy:PATH"]


def test_ptb_download_offline_fails_fast_naming_ptb_path(tmp_path: Path, monkeypatch) -> None:
    def offline(url: str, timeout: float) -> bytes:
        assert timeout <= 10, "offline must fail quickly"
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(corpus_mod, "_open_url", offline)
    with pytest.raises(CorpusError, match="ptb:PATH") as e:
        load_corpus("ptb", cache_dir=tmp_path)
    _one_line(e)


def test_ptb_download_caches_and_reuses(tmp_path: Path, monkeypatch) -> None:
    fetched: list[str] = []

    def fake(url: str, timeout: float) -> bytes:
        fetched.append(url)
        split = url.rsplit(".", 2)[-2]
        return {"train": TRAIN, "valid": VALID, "test": TEST}[split].encode()

    monkeypatch.setattr(corpus_mod, "_open_url", fake)
    logged: list[str] = []
    c = load_corpus("ptb", cache_dir=tmp_path, log=logged.append)
    assert len(fetched) == 3 and all(u.startswith("https://") for u in fetched) and len(logged) == 3
    assert (tmp_path / "ptb" / "ptb.train.txt").read_text() == TRAIN
    assert _words(c, c.valid) == ["the", "cat", UNK, EOS]

    monkeypatch.setattr(corpus_mod, "_open_url", lambda url, timeout: pytest.fail("cache not reused"))
    assert torch.equal(load_corpus("ptb", cache_dir=tmp_path).train, c.train)


def test_ptb_cache_dir_from_environment(tmp_path: Path, monkeypatch) -> None:
    _write_ptb(tmp_path / "ptb", "ptb.")
    monkeypatch.setenv("AUTOSHRINK_CACHE", str(tmp_path))
    monkeypatch.setattr(corpus_mod, "_open_url", lambda url, timeout: pytest.fail("should be cached"))
    assert load_corpus("ptb").train.numel() == 11


def test_tokenize_ptb_style() -> None:
    text = (
        "The Cat's 2 hats, 3.5 kg!  Don\u2019t panic.\n"
        "Next line of the same\nparagraph?\n\n"
        "   >>> print('code')\n   code\n"
    )
    assert tokenize_ptb_style(text) == [
        ["the", "cat's", "N", "hats", "N", "kg"],
        ["don't", "panic"],
        ["next", "line", "of", "the", "same", "paragraph"],
    ]


def test_embedded_corpus_is_deterministic_and_non_trivial() -> None:
    a, b = load_corpus("embedded"), load_corpus()
    assert a.name == "embedded" and a.vocab == b.vocab
    for split in ("train", "valid", "test"):
        assert torch.equal(getattr(a, split), getattr(b, split))
    assert a.train.numel() > 20_000 and a.valid.numel() > 2_000 and a.test.numel() > 2_000
    assert 0.75 < a.train.numel() / (a.train.numel() + a.valid.numel() + a.test.numel()) < 0.85
    assert a.vocab_size > 1_000 and UNK in a.vocab and EOS in a.vocab and "N" in a.vocab
    words = _words(a, a.train)
    assert words.count(EOS) > 1_000 and "the" in a.vocab[:3]
    unk_share = words.count(UNK) / len(words)
    assert 0 < unk_share < 0.1
    assert any(str(a.train.numel()) in n.replace(",", "") for n in a.notes)
    small = load_corpus("embedded", max_vocab=200)
    assert small.vocab_size == 200 and small.vocab[:50] == [w for w in a.vocab if w != UNK][:50]
    assert torch.equal(
        small.train != small.vocab.index(UNK), torch.tensor([w in small.vocab and w != UNK for w in words])
    )


def test_batchify_columns_drop_tail() -> None:
    data = torch.arange(23)
    b = batchify(data, 4, "cpu")
    assert b.shape == (5, 4)
    assert b[:, 1].tolist() == [5, 6, 7, 8, 9]  # each column is a contiguous stretch
    with pytest.raises(CorpusError, match="too few"):
        batchify(torch.arange(5), 4)


@pytest.mark.skipif(not SHARED_PTB.is_dir(), reason="shared PTB proxy data not present at ../shared/data/ptb-proxy")
def test_shared_ptb_proxy_loads() -> None:
    c = load_corpus(f"ptb:{SHARED_PTB}")
    assert c.train.numel() == 84_832 + 4_000  # words + one <eos> per line
    assert c.valid.numel() == 6_760 + 300 and c.test.numel() == 6_342 + 300
    assert c.vocab.count(UNK) == 1 and 5_000 < c.vocab_size <= 10_000
