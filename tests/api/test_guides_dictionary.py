"""The segmenter's dictionary is kept small (issue #13: an API process at rest ≤ 150 MB; jieba's whole dictionary was
~60 MB of it) without changing how the catalogue is cut."""

from __future__ import annotations

import re
from pathlib import Path

import jieba

from api.services.guides import DICTIONARY_MIN_FREQ, _catalogue_text, _dictionary, _jieba

DICT = Path(jieba.__file__).with_name("dict.txt")


def _tokenizers():
    whole = jieba.Tokenizer()
    whole.initialize()
    small = jieba.Tokenizer()
    small.FREQ, small.total = _dictionary(DICT, keep=_catalogue_text())
    small.initialized = True
    return whole, small


def test_the_process_dictionary_is_the_small_one():
    tokenizer = _jieba().dt
    whole_words = sum(1 for _ in DICT.open(encoding="utf-8"))
    frequent = sum(1 for line in DICT.open(encoding="utf-8") if int(line.split()[1]) >= DICTIONARY_MIN_FREQ)
    words = sum(1 for n in tokenizer.FREQ.values() if n)
    assert words < whole_words * 0.5  # (the whole dictionary: 349,046 words, ~500,000 entries with the prefixes)
    assert words >= frequent
    assert tokenizer.total >= sum(int(line.split()[1]) for line in DICT.open(encoding="utf-8"))


def test_the_catalogue_is_cut_as_with_the_whole_dictionary():
    whole, small = _tokenizers()
    assert small.total == whole.total
    assert len(small.FREQ) < len(whole.FREQ) / 2
    chunks = re.findall(r"[\w\u4e00-\u9fff]+", _catalogue_text())
    assert len(chunks) > 1000
    for cut in ("lcut_for_search", "lcut"):
        differing = [c for c in chunks if getattr(small, cut)(c) != getattr(whole, cut)(c)]
        assert differing == []


def test_a_rare_word_outside_the_catalogue_is_cut_smaller_not_lost():
    whole, small = _tokenizers()
    rare = next(
        word for word, n in (line.split()[:2] for line in DICT.open(encoding="utf-8"))
        if int(n) < DICTIONARY_MIN_FREQ and len(word) >= 3 and word not in _catalogue_text()
    )
    assert rare in whole.lcut(rare)
    assert "".join(small.lcut(rare)) == rare
