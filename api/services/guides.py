"""Search over the service guides (办事指南) that understands Chinese: jieba segmentation, a synonym list kept as data
(api/data/catalog/synonyms.toml: what people type → the catalogue's words) and BM25 ranking over each item's guide.

``search_items(text)`` ranks the items; ``Search.best`` is the item when one clearly wins, ``Search.ambiguous`` says
the question fits several items about equally (规划证: 用地 or 工程?) and ``Search.candidates`` lists them. The
conversation (issue #11 §2) reuses these. Everything runs in-process; the index is rebuilt when a guide changes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import tomllib
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Iterable

from api.services.catalog import DEFAULT_ROOT

# BM25 parameters (the usual defaults) and the weight of each part of a guide: the item's name says most.
K1, B = 1.5, 0.75
FIELD_WEIGHTS = {"name": 4, "result": 3, "department": 1, "conditions": 1, "materials": 1, "faq": 1, "basis": 1}
PHRASE_BONUS = 10.0  # a catalogue phrase of the question (or a synonym's target) found whole in the item's name/result
SHARED_RUN = 5  # a run of at least this many characters shared by the question and an item's name/result …
RUN_BONUS = 2.0  # … adds this much per character (项目建议书 → 政府投资项目建议书审批)
MIN_SCORE = 1.0  # below this nothing matched well enough to name an item
AMBIGUITY_RATIO = 0.75  # a runner-up scoring at least this share of the best makes the question ambiguous
_WORD = re.compile(r"[\w\u4e00-\u9fff]+")

_jieba_lock = threading.Lock()
_jieba_ready = False
# jieba's dictionary (349,046 words) held whole is ~60 MB of a process. Kept: the words seen at least this many times
# in its corpus, and every word the shipped catalogue's texts contain (api/data/catalog: guides, forms, synonyms),
# ~140,000 words, ~25 MB. The total frequency stays the whole dictionary's, so a kept word scores as before and the
# catalogue's texts are cut exactly as with the whole dictionary (a text is cut by the words it contains: a test
# compares); elsewhere a rare word is cut into shorter words or characters (jieba's HMM joins unknown runs).
DICTIONARY_MIN_FREQ = 5


def _jieba():
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                # the dictionary ships with the package: no network
                jieba.dt.FREQ, jieba.dt.total = _dictionary(
                    Path(jieba.__file__).with_name("dict.txt"), keep=_catalogue_text()
                )
                jieba.dt.initialized = True
                _jieba_ready = True
    return jieba


def _catalogue_text(root: Path = DEFAULT_ROOT) -> str:
    """The texts of the shipped catalogue (lower case, as the analyzer cuts them), one per line."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.toml"))).lower()


def _dictionary(path: Path, *, keep: str = "", min_freq: int = DICTIONARY_MIN_FREQ) -> tuple[dict[str, int], int]:
    """jieba's prefix dictionary (word → frequency, each prefix of a word → 0 unless a word) of the words of ``path``
    seen at least ``min_freq`` times or found in ``keep``, and the total frequency of all its words (what jieba's own
    loader gives for the whole file). The file is read line by line, never held whole."""
    pairs = {keep[i : i + 2] for i in range(len(keep) - 1)}  # a cheap first test before searching ``keep``
    freq: dict[str, int] = {}
    total = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            word, count = line.split(" ", 2)[:2]
            n = int(count)
            total += n
            if n >= min_freq or (word[:2] in pairs and word in keep):
                freq[word] = n
                for end in range(1, len(word)):
                    freq.setdefault(word[:end], 0)
    return freq, total


@dataclass(frozen=True)
class Vocabulary:
    synonyms: dict[str, list[str]]
    stopwords: frozenset[str]

    @classmethod
    def read(cls, root: Path | None = None) -> "Vocabulary":
        path = (root or DEFAULT_ROOT) / "synonyms.toml"
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(dict(doc.get("synonyms", {})), frozenset((doc.get("stopwords") or {}).get("words", [])))


class Analyzer:
    """Text → terms: jieba's search-mode segmentation, stop words and single characters left out, synonyms expanded."""

    def __init__(self, vocabulary: Vocabulary, extra_words: Iterable[str] = ()) -> None:
        self.vocabulary = vocabulary
        jieba = _jieba()
        # Teach the segmenter the colloquial terms and the catalogue's own names, so they stay whole.
        for word in [*vocabulary.synonyms, *(w for ws in vocabulary.synonyms.values() for w in ws), *extra_words]:
            jieba.add_word(word, freq=2000)
        self._terms_by_term: dict[str, list[str]] = {}

    def terms(self, text: str) -> list[str]:
        jieba = _jieba()
        out = []
        for chunk in _WORD.findall(text.lower()):
            for token in jieba.lcut_for_search(chunk):
                if len(token) > 1 and token not in self.vocabulary.stopwords:
                    out.append(token)
        return out

    def query_terms(
        self, text: str, catalogue_phrases: Iterable[str] = ()
    ) -> tuple[list[str], list[str], list[list[str]], list[str]]:
        """The query's own terms, the terms its synonyms expand to, the groups of alternatives a synonym stood for
        (规划证 → 建设用地规划许可证 | 建设工程规划许可证), and the phrases to find whole in names: the catalogue's
        own phrases the question contains and the synonyms' targets. Longest first: a catalogue phrase (建设工程规划
        许可证) hides the synonyms inside it (规划许可证), a longer synonym the shorter ones."""
        terms = self.terms(text)
        expanded: list[str] = []
        alternatives: list[list[str]] = []
        phrases: list[str] = []
        covered = text
        for phrase in sorted(set(catalogue_phrases), key=len, reverse=True):
            if len(phrase) > 1 and phrase in covered:
                covered = covered.replace(phrase, " ")
                phrases.append(phrase)
        for term in sorted(self.vocabulary.synonyms, key=len, reverse=True):
            if term not in covered:
                continue
            covered = covered.replace(term, " ")
            targets = self.vocabulary.synonyms[term]
            if len(targets) > 1:
                alternatives.append(targets)
            phrases.extend(targets)
            for target in targets:
                expanded.extend(self.terms(target))
        return terms, expanded, alternatives, phrases


@dataclass(frozen=True)
class Hit:
    code: str
    score: float


@dataclass(frozen=True)
class Search:
    hits: list[Hit]  # best first, only those scoring at least MIN_SCORE
    ambiguous: bool
    candidates: list[str]  # item codes: the best alone when clear, every close one when ambiguous

    @property
    def best(self) -> str | None:
        return self.hits[0].code if self.hits and not self.ambiguous else None


class GuideIndex:
    """BM25 over the guides of a set of items (code → guide content as ``load-catalog`` stored it)."""

    def __init__(self, guides: dict[str, dict[str, Any]], vocabulary: Vocabulary) -> None:
        self.analyzer = Analyzer(vocabulary, extra_words=[g["name"] for g in guides.values()])
        self.codes = list(guides)
        self.names = {code: g["name"] for code, g in guides.items()}
        self.titles = {code: f"{g['name']} {g.get('result', '')}" for code, g in guides.items()}
        self.phrases = {p for g in guides.values() for p in (g["name"], g.get("result", "")) if p}
        self.docs: list[Counter[str]] = []
        for code in self.codes:
            g = guides[code]
            parts = {
                "name": g["name"],
                "result": g.get("result", ""),
                "department": g.get("department", ""),
                "conditions": " ".join(g.get("conditions", [])),
                "materials": " ".join(m.get("name", "") for m in g.get("materials", [])),
                "faq": " ".join(f"{f['q']} {f['a']}" for f in g.get("faq", [])),
                "basis": " ".join(b["law"] for b in g.get("basis", [])),
            }
            tf: Counter[str] = Counter()
            for part, text in parts.items():
                for term in self.analyzer.terms(text):
                    tf[term] += FIELD_WEIGHTS[part]
            self.docs.append(tf)
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg_length = (sum(self.lengths) / len(self.lengths)) if self.lengths else 1.0
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def _score(self, terms: list[str], phrases: Iterable[str] = (), text: str = "") -> list[tuple[str, float]]:
        phrases = list(phrases)
        scores = []
        for code, tf, length in zip(self.codes, self.docs, self.lengths):
            score = 0.0
            for term in set(terms):
                f = tf.get(term)
                if f:
                    score += self.idf[term] * f * (K1 + 1) / (f + K1 * (1 - B + B * length / self.avg_length))
            score += PHRASE_BONUS * sum(1 for p in phrases if p in self.titles[code])
            if len(text) >= SHARED_RUN:
                title = self.titles[code]
                run = SequenceMatcher(None, text, title, autojunk=False).find_longest_match(0, len(text), 0, len(title))
                if run.size >= SHARED_RUN:
                    score += RUN_BONUS * run.size
            if score > 0:
                scores.append((code, score))
        scores.sort(key=lambda pair: (-pair[1], pair[0]))
        return scores

    def search(self, text: str) -> Search:
        own, expanded, alternatives, phrases = self.analyzer.query_terms(text or "", self.phrases)
        text = (text or "")[:200]
        ranked = [
            Hit(code, round(score, 4)) for code, score in self._score(own + expanded, phrases, text) if score >= MIN_SCORE
        ]
        if not ranked:
            return Search([], False, [])
        top = ranked[0].score
        close = [h.code for h in ranked if h.score >= top * AMBIGUITY_RATIO]
        # A term standing for several things (规划证) is ambiguous when its alternatives pick different items.
        picked = []
        fixed = [p for p in phrases if not any(p in group for group in alternatives)]
        for group in alternatives:
            for target in group:
                best = self._score(own + self.analyzer.terms(target), [*fixed, target], text)
                if best and best[0][0] not in picked:
                    picked.append(best[0][0])
        if len(picked) > 1:
            close = [h.code for h in ranked if h.code in picked]
        ambiguous = len(close) > 1
        return Search(ranked, ambiguous, close if ambiguous else [ranked[0].code])


_index_lock = threading.Lock()
_index: tuple[Any, GuideIndex] | None = None


async def guide_index() -> GuideIndex:
    """The index of the latest guides, rebuilt when a guide version was added (``load-catalog``)."""
    global _index
    from tortoise.functions import Max

    from api.models import ItemGuide

    stamp_row = await ItemGuide.annotate(last=Max("id")).first().values("last")
    stamp = stamp_row["last"] if stamp_row else None
    current = _index
    if current is not None and current[0] == stamp:
        return current[1]
    guides: dict[str, dict[str, Any]] = {}
    for row in await ItemGuide.all().order_by("version").values("item__code", "content"):
        guides[row["item__code"]] = row["content"]  # the latest version wins
    # Segmenting every guide takes a second or two the first time (jieba loads its dictionary): not on the loop.
    index = await asyncio.to_thread(GuideIndex, guides, Vocabulary.read())
    with _index_lock:
        _index = (stamp, index)
    return index


async def search_items(text: str) -> Search:
    """Rank the catalogue's items for a question (see ``Search``)."""
    return (await guide_index()).search(text)


async def list_items(
    *, stage: int | None = None, department: str | None = None, process_type: int | None = None,
    search: str | None = None,
) -> list[Any]:
    """The catalogue's items filtered (stage, department code, process type) in catalogue order, or, with a search
    text, the matching items by relevance (best first)."""
    from api.models import ApprovalItem, TemplateItem

    query = ApprovalItem.all()
    if department is not None:
        query = query.filter(department__code=department)
    if stage is not None or process_type is not None:
        entries = TemplateItem.all()
        if stage is not None:
            entries = entries.filter(template_stage__stage=stage)
        if process_type is not None:
            entries = entries.filter(template_stage__template__process_type=process_type)
        query = query.filter(id__in=list({row["item_id"] for row in await entries.values("item_id")}))
    items = await query.order_by("id")
    if search is None or not search.strip():
        return items
    ranked = (await search_items(search)).hits
    by_code = {item.code: item for item in items}
    return [by_code[hit.code] for hit in ranked if hit.code in by_code]


async def ranked_items(text: str) -> list[tuple[Any, float]]:
    """The items a question matches, best first, as (ApprovalItem, score) pairs."""
    from api.models import ApprovalItem

    hits = (await search_items(text)).hits
    by_code = {item.code: item for item in await ApprovalItem.filter(code__in=[h.code for h in hits])}
    return [(by_code[h.code], h.score) for h in hits if h.code in by_code]
