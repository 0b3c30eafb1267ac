"""An item's language: the one given at intake, checked, or else guessed from its words.

The guess counts common function words of English, Spanish and Portuguese, the three
languages the site speaks. A dependency (langdetect, lingua) would be heavier than the job:
news items are short, the choice is among three, and an unsure guess must say "unknown"
("") rather than pick one, which a stopword count does transparently and deterministically.
"""

from __future__ import annotations

import re

from publisher.errors import InputError

_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}")
_WORD = re.compile(r"[^\W\d_]+")
MIN_HITS = 2  # fewer stopwords than this is too little to go on


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        """the and of to in is are was were for on with that this by from at its it as be
        has have had will which their they about after into new"""
    ),
    "es": _words(
        """el la los las del y en es un una con por para que se al su sus más fue son
        como pero sobre este esta entre también ha han desde nuevo nueva"""
    ),
    "pt": _words(
        """o a os as do da dos das e em é um uma com por para que se ao à às seu sua
        mais foi são como mas sobre este esta entre também não no na nos nas pelo pela
        novo nova"""
    ),
}


def clean_lang(value: object) -> str:
    """A given language tag, normalised ("pt_br" -> "pt-BR"); InputError for anything else."""
    if not isinstance(value, str) or not _TAG.fullmatch(value.strip()):
        raise InputError("lang must be a language tag such as en, es or pt-BR")
    parts = value.strip().replace("_", "-").split("-")
    return "-".join([parts[0].lower(), *(p.upper() if len(p) == 2 else p for p in parts[1:])])


def detect_language(title: str, summary: str = "") -> str:
    """ "en", "es" or "pt" when the words say so clearly, else "" (unknown)."""
    words = _WORD.findall(f"{title} {title} {summary}".lower())  # the title counts twice
    scores = {lang: sum(1 for w in words if w in stop) for lang, stop in STOPWORDS.items()}
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_HITS or top == second:
        return ""
    return best
