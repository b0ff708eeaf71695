"""Slugs for Slack channel names: what a title becomes in `inc-<number>-<slug>`."""

from __future__ import annotations

import re
import unicodedata

_SLUG_SEPARATORS = re.compile(r"[^a-z0-9]+")
_SLUG_MARKUP = re.compile(r"<[^<>]*>|&\w+;")
# Lowercase letters NFKD does not decompose into ASCII but that have an obvious spelling.
_SLUG_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th"}
)


def slugify(title: str, max_len: int) -> str:
    """Lowercase ASCII letters, digits and hyphens, e.g. for a Slack channel name."""
    without_markup = _SLUG_MARKUP.sub(" ", title).lower().translate(_SLUG_LETTERS)
    ascii_only = unicodedata.normalize("NFKD", without_markup).encode("ascii", "ignore").decode()
    slug = _SLUG_SEPARATORS.sub("-", ascii_only.lower()).strip("-")
    return _cut_at_hyphen(slug, max_len)


def _cut_at_hyphen(slug: str, max_len: int) -> str:
    if max_len <= 0:
        return ""
    if len(slug) <= max_len:
        return slug
    cut = slug[:max_len]
    # Only back off to a hyphen when the cut fell inside a word; a single long word is cut hard.
    if slug[max_len] != "-" and "-" in cut:
        cut = cut[: cut.rfind("-")]
    return cut.strip("-")
