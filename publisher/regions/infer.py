"""Region inference: which M49 regions an item's title and summary are about.

Rules (DESIGN.md "Regions"): the title's mentions win; only when the title names no region do
the summary's count. Mentions that stand only in a comparison ("more than in Peru", "compared
with Venezuela", "a diferencia de México") are dropped. Nothing found gives the default region.
"New Mexico" and "New Jersey" are places in the United States and tag ``us``; "Georgia" next to
US words ("Atlanta, Georgia", "the U.S. state of Georgia", "Georgia's governor") tags ``us`` too.
"Chad", "Jordan" and "Georgia" as person names ("Michael Jordan", "Chad Smith said") tag nothing.

Speed: a text becomes byte tokens with one ``bytes.translate`` and one ``split``; a set test
against the index keys rejects most texts, and only tokens that start a phrase are looked at.
The comparison rules need punctuation, so a slower tokenizer runs only when a cue word is present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import NamedTuple

from publisher.regions.lexicon import (
    AFTER_A,
    BLOCK,
    CUE_TOKENS,
    CUES,
    EN_WORDS,
    ES_ONLY,
    ES_WORDS,
    FILLER,
    FIRST_NAMES,
    JOINERS,
    MORE,
    MORE_FOLDED,
    NEEDS_MORE,
    NOT_SHOUTED,
    NOT_SURNAMES,
    PERSON_SLUGS,
    QUE,
    SEP_CLASS,
    SEP_TABLE,
    SPEECH,
    US_EXACT,
    US_WORDS,
    build,
    norm,
    raw_bytes,
    tokens,
)
from publisher.regions.tree import RegionTree

_SPOTS = CUE_TOKENS | MORE  # any of these sends a text to the comparison check
_ANY_CUE = CUE_TOKENS | QUE
# Clause breaks: a comma (1); ; : ! ? or a full stop that does not end "U.S." or "St." (2).
_BREAKS = re.compile(rb"([,;:!?.])")
_WORDS = re.compile(f"[^{SEP_CLASS}]+")

_Match = tuple[int, int, str]  # first token, end token (exclusive), slug


class Mention(NamedTuple):
    """One region phrase found in a text, with its character span (for debugging)."""

    slug: str
    start: int
    end: int
    phrase: str


class RegionInferrer:
    """Tags items with region slugs from their title and summary; pure and thread-safe."""

    def __init__(self, tree: RegionTree, *, default: str = "americas") -> None:
        self.tree = tree
        self.default = tree.normalize(default)
        lexicon = build(tree)
        self._index = lexicon.index
        self._keys = lexicon.keys
        self._position = {r.slug: i for i, r in enumerate(tree)}

    def infer(self, title: str, summary: str = "") -> list[str]:
        """Slugs in tree order; the title's if it names any, else the summary's, else default."""
        found = self._slugs(title) or (self._slugs(summary) if summary else None)
        if not found:
            return [self.default]
        return sorted(found, key=self._position.__getitem__)

    def mentions(self, text: str) -> list[Mention]:
        """The mentions that count in one text, with their character spans."""
        toks, brk = _broken_tokens(text)
        spans = [m.span() for m in _WORDS.finditer(text)]
        if len(spans) != len(toks):  # only if NFC normalisation changed the token count
            spans = [(0, len(text))] * len(toks)
        matches = self._scan(toks, text, range(len(toks)))
        dropped = _compared(toks, brk, matches)
        return [
            Mention(slug, spans[i][0], spans[j - 1][1], text[spans[i][0] : spans[j - 1][1]])
            for i, j, slug in matches
            if i not in dropped
        ]

    def _slugs(self, text: str) -> set[str]:
        toks = tokens(text)
        hits = self._keys.intersection(toks)
        if not hits:
            return set()
        matches = self._scan(toks, text, _positions(toks, hits))
        if matches and not _SPOTS.isdisjoint(toks):
            cues = CUE_TOKENS.intersection(toks)
            if not MORE.isdisjoint(toks):
                cues |= QUE.intersection(toks)
            if cues and _near(matches, _positions(toks, cues)):
                toks, brk = _broken_tokens(text)
                matches = self._scan(toks, text, _positions(toks, hits))
                dropped = _compared(toks, brk, matches)
                return {slug for i, _, slug in matches if i not in dropped}
        return {slug for _, _, slug in matches}

    def _person(self, toks: list[bytes], i: int, j: int) -> bool:
        """Whether a country name that is also a first name ("Chad", "Jordan") is a person."""
        if i and norm(toks[i - 1]) in FIRST_NAMES:
            return True
        nxt = toks[j] if j < len(toks) else b""
        if not nxt[:1].isupper() or nxt.isupper() or nxt in self._keys or norm(nxt) in NOT_SURNAMES:
            return False
        if j + 1 < len(toks) and norm(toks[j + 1]) in SPEECH:
            return True  # "Chad Smith said"
        return 2 * sum(1 for t in toks if t[:1].isupper()) < len(toks)  # sentence case: a surname

    def _scan(self, toks: list[bytes], text: str, where: Iterable[int]) -> list[_Match]:
        """Longest phrase at each candidate position, left to right, without overlaps."""
        index, out, covered = self._index, [], 0
        for i in where:
            if i < covered or toks[i] not in index:
                continue
            reach, entries = index[toks[i]]
            after = tuple(map(norm, toks[i + 1 : i + 1 + reach])) if reach else ()
            for tail, size, slug, kind in entries:
                if size and after[:size] != tail:
                    continue
                if kind == ES_ONLY and not _spanish(toks):
                    continue
                if kind == NOT_SHOUTED and text.isupper():
                    continue
                j = covered = i + 1 + size
                if kind != BLOCK and not (slug in PERSON_SLUGS and self._person(toks, i, j)):
                    if slug == "ge" and _us_context(toks, i, j):
                        slug = "us"
                    out.append((i, j, slug))
                break
        return out


def _positions(toks: list[bytes], wanted: AbstractSet[bytes]) -> list[int]:
    """Sorted indices of the wanted tokens; C-level scans beat a Python loop over every token."""
    if len(wanted) > 2 or len(toks) < 20:
        return [i for i, t in enumerate(toks) if t in wanted]
    out = []
    for w in wanted:
        i = -1
        for _ in range(toks.count(w)):
            i = toks.index(w, i + 1)
            out.append(i)
    out.sort()
    return out


def _near(matches: list[_Match], cues: list[int]) -> bool:
    """Whether a mention starts close enough after a cue to be its object."""
    return any(0 < i - c <= 8 for i, _, _ in matches for c in cues)


def _spanish(toks: list[bytes]) -> bool:
    """Whether Spanish function words outnumber English ones ("América" is the continent)."""
    return len(ES_WORDS.intersection(toks)) > len(EN_WORDS.intersection(toks))


def _us_context(toks: list[bytes], i: int, j: int) -> bool:
    """Whether US words stand within six tokens of a "Georgia" mention (the state, not ge)."""
    near = toks[max(0, i - 6) : i] + toks[j : j + 6]
    return any(t in US_EXACT or norm(t) in US_WORDS for t in near)


def _broken_tokens(text: str) -> tuple[list[bytes], list[int]]:
    """Tokens exactly as ``tokens`` gives them, plus the clause break before each one."""
    parts = _BREAKS.split(raw_bytes(text))
    toks: list[bytes] = []
    brk: list[int] = []
    pending = 0
    for k in range(0, len(parts), 2):
        words = parts[k].translate(SEP_TABLE).split()
        if words:
            toks.extend(words)
            brk.append(pending)
            brk.extend([0] * (len(words) - 1))
            pending = 0
        if k + 1 < len(parts):
            sep, after = parts[k + 1], parts[k + 2]
            if sep == b",":
                pending = max(pending, 1)
            elif sep != b"." or (
                (not after or after[:1].isspace()) and words and len(words[-1]) > 2
            ):
                pending = 2
    return toks, brk


def _compared(toks: list[bytes], brk: list[int], matches: list[_Match]) -> set[int]:
    """Start tokens of the mentions that are only the object of a comparison cue."""
    starts = {i: j for i, j, _ in matches}
    dropped: set[int] = set()
    n = len(toks)
    for ci in _positions(toks, _ANY_CUE.intersection(toks)):
        for tail, cond in CUES.get(norm(toks[ci]), []):
            k = ci + 1 + len(tail)
            if k > n or any(norm(toks[ci + 1 + x]) != w for x, w in enumerate(tail)):
                continue
            if cond == AFTER_A and (ci == 0 or norm(toks[ci - 1]) != b"a"):
                continue
            if cond == NEEDS_MORE and not _more_before(toks, brk, ci):
                continue
            start = ci
            while start > 0 and brk[start] != 2:
                start -= 1
            # "Unlike X, ...", "A diferencia de X, ...", "..., unlike X, ...": X ends at a comma.
            initial = ci - start <= 1 or 1 in brk[max(ci - 1, 0) : ci + 1]
            skipped = 0
            while k < n and k not in starts and not brk[k] and skipped < 4:
                if norm(toks[k]) not in FILLER:
                    break
                k, skipped = k + 1, skipped + 1
            if k >= n or k not in starts or brk[k]:
                break
            while True:  # the object, then any list of mentions joined to it
                dropped.add(k)
                k = first = starts[k]
                if k >= n or brk[k] == 2 or (brk[k] == 1 and initial):
                    break
                while k < n and k not in starts and norm(toks[k]) in JOINERS:
                    if k != first and brk[k]:
                        break
                    k += 1
                if k >= n or k not in starts or (k != first and brk[k]):
                    break
            break
    return dropped


def _more_before(toks: list[bytes], brk: list[int], ci: int) -> bool:
    """Whether a Spanish comparative ("más", "menos", ...) precedes ci in its sentence."""
    k = ci
    while k > 0 and brk[k] != 2:
        k -= 1
        if norm(toks[k]) in MORE_FOLDED:
            return True
    return False


def evaluate(inferrer: RegionInferrer, rows: Iterable[Mapping[str, str]]) -> tuple[float, float]:
    """Micro-averaged precision and recall at sub-region level over labelled rows.

    Each row has ``title``, ``summary`` and ``regions`` (slugs separated by spaces); expected and
    inferred slugs are both mapped with ``tree.subregion_of`` and compared as sets per item.
    """
    tree = inferrer.tree
    hits = inferred_n = expected_n = 0
    for row in rows:
        want = {tree.subregion_of(tree.normalize(s)) for s in row["regions"].split()}
        got = {tree.subregion_of(s) for s in inferrer.infer(row["title"], row["summary"])}
        hits += len(want & got)
        inferred_n += len(got)
        expected_n += len(want)
    return hits / max(inferred_n, 1), hits / max(expected_n, 1)


def exact_match(inferrer: RegionInferrer, rows: Iterable[Mapping[str, str]]) -> float:
    """Share of rows whose inferred slugs equal the expected ones exactly (country level)."""
    rows = list(rows)
    tree = inferrer.tree
    good = sum(
        set(inferrer.infer(r["title"], r["summary"]))
        == {tree.normalize(s) for s in r["regions"].split()}
        for r in rows
    )
    return good / max(len(rows), 1)
