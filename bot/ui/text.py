"""Pure helpers that make user-typed text safe and readable in Markdown and Slack mrkdwn.

Everything a person types in Slack arrives with Slack's own markup (`<@U123>`, `<!channel>`,
`<https://x|label>`) and HTML entities. Renderers first turn that markup into plain text with
`replace_mentions`, then escape it for the target format, so nothing typed can ping anyone or
change the structure of the document it lands in.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

# One Slack markup token: `<` + anything but angle brackets + `>`.
_SLACK_TOKEN = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(lt|gt|amp);")
_ENTITY_VALUES = {"lt": "<", "gt": ">", "amp": "&"}
_BROADCASTS = ("channel", "here", "everyone")

# Characters that mean something anywhere in a Markdown line (GFM included: `~` strikes, `|` tables).
_MARKDOWN_ESCAPES = str.maketrans({char: "\\" + char for char in "\\`*_[]<>|~"})
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>|~]")
# What can open a block when it starts a line: heading, quote, list, setext underline.
_LEADING_BLOCK_MARKERS = "#>+=-"
_LEADING_ORDERED_MARKER = re.compile(r"^(\d{1,9})([.)])")
# `&copy;` or `&#60;` would be decoded by a Markdown renderer; `\&` keeps them literal.
_ENTITY_LIKE = re.compile(r"&(?=#?\w+;)")
_LINE_SEPARATOR = " / "

_LINK_SCHEMES = ("http", "https")
# Left as they are when a URL goes into `[name](url)`: what URLs need, minus `()<>` and spaces,
# which would end the link early.
_URL_SAFE = ":/?#[]@!$&'*+,;=%~-._"


def display_name(user_id: str | None, names: dict[str, str]) -> str:
    if user_id is None or user_id == "":
        return "unknown"
    return names.get(user_id) or user_id


def replace_mentions(text: str, names: dict[str, str]) -> str:
    """Slack markup → plain readable text; mentions become `@name` words that ping nobody."""
    # The membership tests skip the regex for the many messages with no markup at all.
    if "<" in text:
        text = _SLACK_TOKEN.sub(lambda match: _token_as_text(match.group(1), names), text)
    if "&" in text:
        # One pass, so `&amp;lt;` becomes `&lt;` and not `<`.
        text = _ENTITY.sub(lambda match: _ENTITY_VALUES[match.group(1)], text)
    return text


def _token_as_text(token: str, names: dict[str, str]) -> str:
    target, _, label = token.partition("|")
    if target.startswith("@"):
        return "@" + (names.get(target[1:]) or label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        return _special_mention_as_text(target[1:], label)
    if label:
        return f"{label} ({target})"
    return target


def _special_mention_as_text(command: str, label: str) -> str:
    name, _, argument = command.partition("^")
    if name == "subteam":
        return "@" + (label or argument).removeprefix("@")
    if name in _BROADCASTS or not label:
        return "@" + name
    # `<!date^…|fallback>` and the like carry their readable form in the label.
    return label


def escape_markdown_inline(text: str) -> str:
    """Text that stays inside the one Markdown paragraph or list item it is put in."""
    lines = (_escape_markdown_line(line) for line in text.splitlines())
    return _LINE_SEPARATOR.join(line for line in lines if line)


def escape_markdown_paragraphs(text: str) -> str:
    """Multi-line text kept as lines and paragraphs, none of which can become another block.

    Lines within a paragraph end in a backslash (a CommonMark hard break) so their breaks show;
    blank lines separate paragraphs.
    """
    paragraphs = [_escape_paragraph(chunk) for chunk in re.split(r"\n\s*\n", _normalise_newlines(text))]
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


def _escape_paragraph(chunk: str) -> str:
    lines = [_escape_markdown_line(line) for line in chunk.splitlines()]
    return "\\\n".join(line for line in lines if line)


def _normalise_newlines(text: str) -> str:
    return "\n".join(text.splitlines())


def _escape_markdown_line(line: str) -> str:
    # Stripping also stops leading spaces from turning a line into an indented code block.
    escaped = line.strip()
    # translate() is slow per character; most timeline messages have nothing to escape.
    if _MARKDOWN_SPECIAL.search(escaped):
        escaped = escaped.translate(_MARKDOWN_ESCAPES)
    if "&" in escaped:
        escaped = _ENTITY_LIKE.sub(r"\\&", escaped)
    return _escape_leading_marker(escaped)


def _escape_leading_marker(line: str) -> str:
    if line[:1] and line[0] in _LEADING_BLOCK_MARKERS:
        return "\\" + line
    if line[:1].isdigit():
        return _LEADING_ORDERED_MARKER.sub(r"\1\\\2", line)
    return line


def escape_mrkdwn(text: str) -> str:
    """The three characters Slack asks to escape; this is what makes `<!channel>` inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, marker: str = "…") -> str:
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return marker[: max(limit, 0)]
    return text[: limit - len(marker)].rstrip() + marker


def safe_link_url(url: str) -> str | None:
    """A URL that can sit inside `[name](…)` without ending it early; None if not http(s)."""
    candidate = url.strip()
    if urlsplit(candidate).scheme.lower() not in _LINK_SCHEMES:
        return None
    return quote(candidate, safe=_URL_SAFE)
