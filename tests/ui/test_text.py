"""The text-safety helpers: Slack markup made readable, Markdown and mrkdwn made inert."""

from __future__ import annotations

import re

import pytest

from bot.domain.slug import slugify
from bot.ui.text import (
    display_name,
    escape_markdown_inline,
    escape_markdown_paragraphs,
    escape_mrkdwn,
    replace_mentions,
    safe_link_url,
    truncate,
)

NAMES = {"U123": "alice", "U456": "bob"}


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [("U123", "alice"), ("U999", "U999"), (None, "unknown"), ("", "unknown")],
)
def test_display_name_falls_back_to_id_then_unknown(user_id: str | None, expected: str) -> None:
    assert display_name(user_id, NAMES) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hi <@U123>", "hi @alice"),
        ("hi <@U123|someone-else>", "hi @alice"),
        ("hi <@U999|carol>", "hi @carol"),
        ("hi <@U999>", "hi @U999"),
        ("see <#C123|general>", "see #general"),
        ("see <#C123>", "see #C123"),
        ("<!channel> <!here> <!everyone>", "@channel @here @everyone"),
        ("<!here|here>", "@here"),
        ("<!subteam^S1|@oncall>", "@oncall"),
        ("<!subteam^S1>", "@S1"),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("<https://x.example/a|the dashboard>", "the dashboard (https://x.example/a)"),
        ("<https://x.example/a>", "https://x.example/a"),
        ("<mailto:a@b.example|mail me>", "mail me (mailto:a@b.example)"),
        ("a &lt; b &gt; c &amp; d", "a < b > c & d"),
        ("&amp;lt;literal&amp;gt;", "&lt;literal&gt;"),
    ],
)
def test_replace_mentions_turns_markup_into_plain_text(raw: str, expected: str) -> None:
    assert replace_mentions(raw, NAMES) == expected


def test_replace_mentions_leaves_no_slack_markup() -> None:
    out = replace_mentions("<!channel> wake up <@U123> <!subteam^S1|@team> <#C1|ops>", NAMES)
    assert "<" not in out and ">" not in out


def test_escape_markdown_inline_collapses_lines() -> None:
    assert escape_markdown_inline("first\nsecond\r\n\nthird") == "first / second / third"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("# heading", r"\# heading"),
        ("> quote", r"\> quote"),
        ("- item", r"\- item"),
        ("+ item", r"\+ item"),
        ("* item", r"\* item"),
        ("1. item", r"1\. item"),
        ("12) item", r"12\) item"),
        ("===", r"\==="),
        ("a|b `c` *d* _e_ [f](g) <h> ~i~ \\", r"a\|b \`c\` \*d\* \_e\_ \[f\](g) \<h\> \~i\~ \\"),
        ("&copy; & co", r"\&copy; & co"),
        ("    indented code?", "indented code?"),
    ],
)
def test_escape_markdown_inline_neutralises_markup(raw: str, expected: str) -> None:
    assert escape_markdown_inline(raw) == expected


def test_escape_markdown_inline_neutralises_markers_after_a_newline() -> None:
    out = escape_markdown_inline("ok\n# heading\n- item\n```")
    assert "\n" not in out
    assert out == r"ok / \# heading / \- item / \`\`\`"


def test_escape_markdown_paragraphs_keeps_lines_and_paragraphs() -> None:
    out = escape_markdown_paragraphs("line one\n# two\n\n\n- three\n---")
    assert out == "line one\\\n\\# two\n\n\\- three\\\n\\---"


def test_escape_mrkdwn_escapes_only_the_three_characters() -> None:
    assert (
        escape_mrkdwn("<!channel> & *bold* _x_ > <@U1>")
        == "&lt;!channel&gt; &amp; *bold* _x_ &gt; &lt;@U1&gt;"
    )


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("a longer sentence", 10, "a longer…"),
        ("abcdef", 1, "…"),
        ("abcdef", 0, ""),
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected
    assert len(truncate(text, limit)) <= max(limit, 0)


def test_truncate_with_custom_marker() -> None:
    assert truncate("abcdefghij", 8, marker=" [...]") == "ab [...]"


@pytest.mark.parametrize(
    ("title", "max_len", "expected"),
    [
        ("Checkout returns 500s", 80, "checkout-returns-500s"),
        ("Café crème — brûlée!", 80, "cafe-creme-brulee"),
        ("Straße øst", 80, "strasse-ost"),
        ("🔥🔥🔥", 80, ""),
        ("<@U123> DB down <!channel> &amp; more", 80, "db-down-more"),
        ("  --a -- b__c..  ", 80, "a-b-c"),
        ("database outage in eu", 12, "database"),
        ("database outage", 8, "database"),
        ("supercalifragilistic", 5, "super"),
        ("anything", 0, ""),
    ],
)
def test_slugify(title: str, max_len: int, expected: str) -> None:
    slug = slugify(title, max_len)
    assert slug == expected
    assert re.fullmatch(r"([a-z0-9]+(-[a-z0-9]+)*)?", slug)


def test_safe_link_url_rejects_other_schemes_and_encodes_link_breakers() -> None:
    assert safe_link_url("javascript:alert(1)") is None
    assert safe_link_url("https://x.example/a b(1).png") == "https://x.example/a%20b%281%29.png"
    assert safe_link_url("https://x.example/p?a=1&b=%20") == "https://x.example/p?a=1&b=%20"
