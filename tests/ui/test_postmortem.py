"""The postmortem renderers, fed reports built straight from the models (no database, no Slack)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.models import (
    CloseForm,
    EntryKind,
    FileRef,
    Incident,
    PostmortemReport,
    Severity,
    State,
    Status,
    Task,
    TaskStatus,
    TimelineEntry,
)
from bot.ui.postmortem import render_markdown
from bot.ui.postmortem_summary import render_summary_blocks

EXAMPLE_3 = Path("/work/shared/postmortems/example-3.txt")
NAMES = {"U123": "alice", "U456": "bob", "B1": "Alertmanager"}
HOSTILE_SEED = (
    "<!channel> <@U123> <!here> &lt;!everyone&gt; <!subteam^S1|@team>\n# heading\n- list\n* star\n"
    "|table|col|\n```code```\n> quote\n1. one\n---\n===\n    indented\n<script>x</script> `tick` [a](b)\n"
)
HOSTILE = (HOSTILE_SEED * (5000 // len(HOSTILE_SEED) + 1))[:5000]


# ---------------------------------------------------------------------------------------------
# Builders


def utc(hhmm: str, day: int = 15) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(2024, 1, day, hours, minutes, tzinfo=UTC)


def entry(ts: str, when: datetime, text: str, author: str | None = "U123", **extra: Any) -> TimelineEntry:
    extra.setdefault("kind", EntryKind.MESSAGE)
    return TimelineEntry(
        incident_id=1, channel_id="C1", ts=ts, occurred_at=when, author_id=author, text=text, **extra
    )


def task(
    task_id: int, description: str, owner: str = "U456", due: date | None = None, done: bool = False
) -> Task:
    return Task(
        id=task_id,
        team_id="T1",
        incident_id=1,
        description=description,
        owner_id=owner,
        due_date=due,
        status=TaskStatus.DONE if done else TaskStatus.OPEN,
        created_by="U123",
        created_at=utc("23:50"),
    )


def make_report(
    entries: Sequence[TimelineEntry] = (),
    tasks: Sequence[Task] = (),
    timezone: str = "UTC",
    names: dict[str, str] | None = None,
    **overrides: Any,
) -> PostmortemReport:
    """A closed INC-7 whose impact ran 22:00–23:45 UTC; `overrides` replace incident or form fields."""
    incident_fields: dict[str, Any] = {
        "id": 1,
        "team_id": "T1",
        "number": 7,
        "title": "Checkout returns 500s",
        "severity": Severity.SEV2,
        "status": Status.CLOSED,
        "state": State.CLOSED,
        "channel_id": "C1",
        "channel_name": "inc-7-checkout",
        "commander_id": "U123",
        "declared_by": "U123",
        "started_at": utc("22:05"),
        "closed_at": utc("23:50"),
        "last_activity_at": utc("23:50"),
    }
    form_fields: dict[str, Any] = {
        "impact": "30% of users could not check out.",
        "impact_start": utc("22:00"),
        "impact_end": utc("23:45"),
        "root_cause": "Load balancer misconfiguration. It routed traffic to dead backends.",
        "resolution": "Corrected the load balancer configuration.",
        "improvements": ["Audit load balancer changes"],
        "submitted_by": "U123",
        "submitted_at": utc("23:50"),
    }
    for key, value in overrides.items():
        (incident_fields if key in Incident.model_fields else form_fields)[key] = value
    return PostmortemReport(
        incident=Incident(**incident_fields),
        form=CloseForm(**form_fields),
        entries=list(entries),
        tasks=list(tasks),
        names=NAMES if names is None else names,
        timezone=timezone,
    )


def assert_in_order(lines: list[str], expected: Sequence[str]) -> None:
    positions = [lines.index(line) for line in expected]  # ValueError names a missing line
    assert positions == sorted(positions), f"out of order: {expected}"


# ---------------------------------------------------------------------------------------------
# Markdown: document shape


def typical_entries() -> list[TimelineEntry]:
    return [
        entry("1.0", utc("22:00"), "HTTP 500 rate above 5 %", author="B1", kind=EntryKind.BOT_MESSAGE),
        entry("2.0", utc("22:05"), "Incident declared, commander @alice", author=None, kind=EntryKind.SYSTEM),
        entry(
            "3.0",
            utc("22:06"),
            "Looking at <@U456>'s dashboard",
            files=[FileRef(name="graph.png", url="https://f.example/g.png")],
        ),
        entry("3.5", utc("22:09"), "second reply", author="U123", thread_ts="3.0"),
        entry("4.0", utc("22:07"), "first reply", author="U456", thread_ts="3.0"),
        entry(
            "5.0",
            utc("22:20"),
            "LB misconfigured",
            author="U456",
            is_key=True,
            edited_at=utc("22:21"),
            history=["DB is down"],
        ),
        entry("6.0", utc("22:25"), "this was a mistake", author="U456", deleted_at=utc("22:26")),
        entry("7.0", utc("22:30"), "reply to a deleted message", author="U456", thread_ts="6.0"),
        entry("8.0", utc("22:31"), "customers notified", kind=EntryKind.NOTE),
    ]


def typical_tasks() -> list[Task]:
    return [
        task(1, "Review LB configs", due=date(2024, 1, 22)),
        task(2, "Add config checks", owner="U123", done=True),
    ]


def test_markdown_has_the_example_sections_and_exact_lines_in_order() -> None:
    lines = render_markdown(make_report(typical_entries(), typical_tasks())).splitlines()

    assert lines[0] == "# INC-7: Checkout returns 500s — Postmortem"
    assert_in_order(
        lines,
        [
            "**Severity:** SEV2 · **Commander:** alice · **Status:** closed · **Channel:** #inc-7-checkout",
            "## Issue Summary",
            "- **Duration:** 2024-01-15 22:00 to 23:45 (UTC), 1 h 45 min",
            "- **Impact:** 30% of users could not check out.",
            "- **Root cause:** Load balancer misconfiguration.",
            "- **Time to detect:** 5 min",
            "- **Time to resolve:** 1 h 45 min",
            "- **Participants:** alice, Alertmanager, bob",
            "## Timeline",
            "- **22:00** — Alertmanager: HTTP 500 rate above 5 %",
            "- **22:05** — incident-bot: _Incident declared, commander @alice_",
            "- **22:06** — alice: Looking at @bob's dashboard — files: [graph.png](https://f.example/g.png)",
            "  - **22:07** — bob: first reply",
            "  - **22:09** — alice: second reply",
            "- **22:20** — 📌 **Key event:** bob: **LB misconfigured** (edited)",
            "- **22:30** — bob: reply to a deleted message",
            "- **22:31** — alice (note): customers notified",
            "## Root Cause and Resolution",
            "**Root cause:** Load balancer misconfiguration. It routed traffic to dead backends.",
            "**Resolution:** Corrected the load balancer configuration.",
            "## Corrective and Preventative Measures",
            "### Improvements/Fixes",
            "- Audit load balancer changes",
            "### Tasks to Address the Issue",
            "- [ ] Review LB configs — owner: @bob, due 2024-01-22",
            "- [x] Add config checks — owner: @alice, no due date",
        ],
    )


def test_replies_sit_directly_under_their_parent_indented() -> None:
    lines = render_markdown(make_report(typical_entries())).splitlines()
    parent = next(i for i, line in enumerate(lines) if "Looking at" in line)
    assert lines[parent].startswith("- ")
    assert [line.split(" — ")[1] for line in lines[parent + 1 : parent + 3]] == [
        "bob: first reply",
        "alice: second reply",
    ]
    assert all(line.startswith("  - ") for line in lines[parent + 1 : parent + 3])


def test_deleted_entry_is_left_out_and_its_orphaned_reply_is_top_level() -> None:
    markdown = render_markdown(make_report(typical_entries()))
    assert "this was a mistake" not in markdown
    assert "\n- **22:30** — bob: reply to a deleted message\n" in markdown


def test_edited_entry_shows_current_text_only() -> None:
    markdown = render_markdown(make_report(typical_entries()))
    assert "**LB misconfigured** (edited)" in markdown
    assert "DB is down" not in markdown


def test_empty_measures_say_none_recorded() -> None:
    lines = render_markdown(make_report(improvements=[])).splitlines()
    improvements = lines.index("### Improvements/Fixes")
    tasks = lines.index("### Tasks to Address the Issue")
    assert lines[improvements + 2] == "None recorded."
    assert lines[tasks + 2] == "None recorded."
    assert "No timeline entries recorded." in lines


def test_time_to_detect_is_zero_when_declared_before_impact_start() -> None:
    markdown = render_markdown(make_report(started_at=utc("21:50")))
    assert "- **Time to detect:** 0 min" in markdown.splitlines()


def test_multi_line_root_cause_stays_in_its_section_as_paragraphs() -> None:
    markdown = render_markdown(make_report(root_cause="First line.\n# not a heading\n\n- not a list"))
    assert "**Root cause:** First line.\\\n\\# not a heading\n\n\\- not a list\n" in markdown
    assert "- **Root cause:** First line." in markdown.splitlines()


# ---------------------------------------------------------------------------------------------
# Markdown: time zones and dates


def test_dates_shown_on_every_time_when_the_timeline_spans_midnight() -> None:
    entries = [entry("1.0", utc("23:50"), "before"), entry("2.0", utc("00:10", day=16), "after")]
    report = make_report(
        entries, impact_start=utc("23:50"), impact_end=utc("00:10", day=16), started_at=utc("23:55")
    )
    lines = render_markdown(report).splitlines()
    assert_in_order(
        lines, ["- **2024-01-15 23:50** — alice: before", "- **2024-01-16 00:10** — alice: after"]
    )
    assert "- **Duration:** 2024-01-15 23:50 to 2024-01-16 00:10 (UTC), 20 min" in lines


def test_times_are_local_to_the_configured_time_zone() -> None:
    # 03:00 UTC on the 16th is 22:00 on the 15th in New York (EST, UTC-5): one local day, no dates.
    entries = [entry("1.0", utc("03:00", day=16), "alert"), entry("2.0", utc("04:45", day=16), "fixed")]
    report = make_report(
        entries,
        timezone="America/New_York",
        impact_start=utc("03:00", day=16),
        impact_end=utc("04:45", day=16),
        started_at=utc("03:05", day=16),
    )
    lines = render_markdown(report).splitlines()
    assert_in_order(lines, ["- **22:00** — alice: alert", "- **23:45** — alice: fixed"])
    assert "- **Duration:** 2024-01-15 22:00 to 23:45 (America/New_York), 1 h 45 min" in lines


def test_local_midnight_in_a_non_utc_zone_adds_dates() -> None:
    # Same UTC day (04:50, 05:10), but 23:50 and 00:10 in New York.
    entries = [entry("1.0", utc("04:50", day=16), "before"), entry("2.0", utc("05:10", day=16), "after")]
    lines = render_markdown(make_report(entries, timezone="America/New_York")).splitlines()
    assert_in_order(
        lines, ["- **2024-01-15 23:50** — alice: before", "- **2024-01-16 00:10** — alice: after"]
    )


def test_naive_datetimes_are_read_as_utc() -> None:
    naive = entry("1.0", datetime(2024, 1, 15, 22, 0), "stored without tzinfo")
    lines = render_markdown(make_report([naive], timezone="Europe/Berlin")).splitlines()
    assert "- **23:00** — alice: stored without tzinfo" in lines


# ---------------------------------------------------------------------------------------------
# Markdown: nothing typed can change the structure or ping anyone

HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
LIST_ITEM = re.compile(r"^\s*([-*+]|\d{1,9}[.)])(\s|$)")
OTHER_BLOCK = re.compile(r"^ {0,3}(>|```|~~~|<|\||=+\s*$|-{2,}\s*$)|^( {4}|\t)")


def unescaped(markdown: str, chars: str) -> list[str]:
    """The characters from `chars` that are not backslash-escaped in `markdown`."""
    return [
        match.group(1) for match in re.finditer(rf"\\.|([{re.escape(chars)}])", markdown) if match.group(1)
    ]


def hostile_report() -> PostmortemReport:
    entries = [
        entry("1.0", utc("22:00"), HOSTILE, author="B1", kind=EntryKind.BOT_MESSAGE),
        entry("2.0", utc("22:01"), HOSTILE, kind=EntryKind.SYSTEM, author="B0"),
        entry(
            "3.0",
            utc("22:02"),
            HOSTILE,
            is_key=True,
            files=[FileRef(name=HOSTILE, url="javascript:alert(1)")],
        ),
        entry("4.0", utc("22:03"), HOSTILE, author="U456", thread_ts="3.0"),
        entry("5.0", utc("22:04"), HOSTILE, kind=EntryKind.NOTE, author="U666"),
    ]
    # Names are substituted for every `<@U123>` in the texts, so they stay short to keep the test quick.
    hostile_names = {"U123": "# al`ice` <!here>\n- |x|", "U456": "<!channel>", "B1": "> Alertmanager"}
    return make_report(
        entries,
        [task(1, HOSTILE, owner="U123"), task(2, HOSTILE, owner="U999")],
        names=hostile_names,
        title=HOSTILE,
        channel_name=HOSTILE,
        impact=HOSTILE,
        root_cause=HOSTILE,
        resolution=HOSTILE,
        improvements=[HOSTILE, HOSTILE],
    )


def test_hostile_text_adds_no_block_and_pings_nobody() -> None:
    markdown = render_markdown(hostile_report())
    lines = markdown.splitlines()

    headings = [line for line in lines if HEADING.match(line)]
    assert [h.split(":")[0] if h.startswith("# ") else h for h in headings] == [
        "# INC-7",
        "## Issue Summary",
        "## Timeline",
        "## Root Cause and Resolution",
        "## Corrective and Preventative Measures",
        "### Improvements/Fixes",
        "### Tasks to Address the Issue",
    ]
    summary_items, timeline_items, improvements, tasks = 6, 5, 2, 2
    assert (
        len([line for line in lines if LIST_ITEM.match(line)])
        == summary_items + timeline_items + improvements + tasks
    )
    assert [line for line in lines if OTHER_BLOCK.match(line)] == []
    assert unescaped(markdown, "`|<>") == []
    for ping in ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "<!subteam^S1|@team>"):
        assert ping not in markdown
    assert "javascript:" not in markdown


def test_ten_thousand_entries_render_fast() -> None:
    start = utc("22:00")
    entries = [
        entry(
            f"{i}.0",
            start + timedelta(seconds=i),
            f"message {i}",
            thread_ts=f"{i - i % 10}.0" if i % 10 else None,
        )
        for i in range(10_000)
    ]
    began = time.perf_counter()
    markdown = render_markdown(make_report(entries))
    elapsed = time.perf_counter() - began
    assert markdown.count("\n  - ") == 9_000
    assert elapsed < 1.0, f"{elapsed:.2f} s for 10,000 entries"


# ---------------------------------------------------------------------------------------------
# The example postmortem's timeline


def test_example_3_timeline_renders_in_order_with_its_times() -> None:
    if not EXAMPLE_3.exists():
        pytest.skip(f"{EXAMPLE_3} is missing")
    example = EXAMPLE_3.read_text(encoding="utf-8")
    parsed = re.findall(r"^(\d{1,2}):(\d\d) PM: (.+?)\s*$", example, flags=re.MULTILINE)
    times = [f"{int(hour) + 12}:{minute}" for hour, minute, _ in parsed]
    assert times == ["22:00", "22:05", "22:20", "22:45", "23:20", "23:30", "23:45"]

    entries = [
        entry(f"{i}.0", utc(hhmm), text)
        for i, (hhmm, (_, _, text)) in enumerate(zip(times, parsed, strict=True))
    ]
    lines = render_markdown(make_report(entries)).splitlines()

    expected = [
        f"- **{hhmm}** — alice: {text}"  # plain prose comes through unescaped
        for hhmm, (_, _, text) in zip(times, parsed, strict=True)
    ]
    assert_in_order(lines, expected)
    example_markers = [
        "DURATION",
        "TIMELINE",
        "ROOT CAUSE AND RESOLUTION",
        "CORRECTIVE AND PREVENTIVE",
        "IMPROVEMENTS/FIXES",
        "TASKS TO ADDRESS",
    ]
    ours = [
        "- **Duration:**",
        "## Timeline",
        "## Root Cause and Resolution",
        "## Corrective and Preventative Measures",
        "### Improvements/Fixes",
        "### Tasks to Address the Issue",
    ]
    example_positions = [example.upper().index(marker) for marker in example_markers]
    assert example_positions == sorted(example_positions)
    assert_in_order(lines, [next(line for line in lines if line.startswith(prefix)) for prefix in ours])


# ---------------------------------------------------------------------------------------------
# Slack summary message


def text_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn"):
            yield node
        for value in node.values():
            yield from text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from text_objects(item)


def assert_within_slack_limits(text: str, blocks: list[dict[str, Any]]) -> None:
    assert 1 <= len(text) <= 3000
    assert len(blocks) <= 12  # Slack allows 50; a summary should be short
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(field["text"]) <= 2000 for field in block.get("fields", []))
        if block["type"] == "context":
            assert len(block["elements"]) <= 10 and all(len(e["text"]) <= 3000 for e in block["elements"])
    objects = list(text_objects(blocks))
    assert all(obj["text"] for obj in objects), "Slack rejects empty text"
    assert len(text) + sum(len(obj["text"]) for obj in objects) < 20_000


def assert_no_live_markup(text: str, blocks: list[dict[str, Any]]) -> None:
    """Only our own mentions of user ids and our file link may be live Slack markup."""
    allowed = re.compile(r"<@U[A-Z0-9]+>|<https://[^|<>\s]+\|Full postmortem>")
    for piece in [text, *(obj["text"] for obj in text_objects(blocks) if obj["type"] == "mrkdwn")]:
        assert "<" not in allowed.sub("", piece) and ">" not in allowed.sub("", piece)
    assert all(obj.get("verbatim") for obj in text_objects(blocks) if obj["type"] == "mrkdwn")


def test_summary_content() -> None:
    report = make_report(typical_entries(), typical_tasks())
    text, blocks = render_summary_blocks(report, "https://files.example/INC-7.md?a=1&b=2")

    assert text.startswith("INC-7 postmortem: Checkout returns 500s")
    assert blocks[0]["text"]["text"] == "INC-7 postmortem: Checkout returns 500s"
    fields = [field["text"] for field in blocks[1]["fields"]]
    assert fields == [
        "*Duration*\n2024-01-15 22:00 to 23:45 (UTC), 1 h 45 min",
        "*Severity*\nSEV2",
        "*Commander*\n<@U123>",
        "*Time to detect*\n5 min",
        "*Time to resolve*\n1 h 45 min",
    ]
    sections = [block["text"]["text"] for block in blocks if block["type"] == "section" and "text" in block]
    assert "*Impact*\n30% of users could not check out." in sections
    assert "*Key events*\n• *22:20* bob: LB misconfigured" in sections
    tasks = "\n".join(
        [
            "*Tasks*",
            "• Review LB configs — <@U456>, due 2024-01-22",
            ":white_check_mark: Add config checks — <@U123>, no due date",
        ]
    )
    assert tasks in sections
    assert sections[-1] == "<https://files.example/INC-7.md?a=1&amp;b=2|Full postmortem>"
    assert blocks[-2]["elements"][0]["text"] == "Timeline: 8 entries"
    assert_within_slack_limits(text, blocks)
    assert_no_live_markup(text, blocks)


@pytest.mark.parametrize("file_url", [None, "", "javascript:alert(1)"])
def test_summary_has_no_link_without_a_usable_file_url(file_url: str | None) -> None:
    _, blocks = render_summary_blocks(make_report(), file_url)
    assert "Full postmortem" not in str(blocks)


def test_summary_of_a_huge_hostile_incident_stays_within_slack_limits() -> None:
    long_text = (HOSTILE * 2)[:1000]
    entries = [
        entry(f"{i}.0", utc("22:00") + timedelta(seconds=i), long_text, is_key=True) for i in range(10_000)
    ]
    tasks = [task(i, long_text, owner="U456", due=date(2024, 2, 1)) for i in range(200)]
    report = make_report(
        entries, tasks, title=HOSTILE, impact=HOSTILE, root_cause=HOSTILE, resolution=HOSTILE
    )

    text, blocks = render_summary_blocks(report, "https://files.example/INC-7.md")

    assert_within_slack_limits(text, blocks)
    assert_no_live_markup(text, blocks)
    sections = [block["text"]["text"] for block in blocks if block["type"] == "section" and "text" in block]
    assert any(s.startswith("*Key events*") and s.endswith("…and 9990 more") for s in sections)
    assert any(s.startswith("*Tasks*") and s.endswith("…and 190 more") for s in sections)
    assert blocks[-2]["elements"][0]["text"] == "Timeline: 10,000 entries"


def test_summary_header_keeps_title_readable_without_markup() -> None:
    _, blocks = render_summary_blocks(make_report(title="DB down <!channel>\n<@U456> on it"), None)
    assert blocks[0]["text"]["text"] == "INC-7 postmortem: DB down @channel @bob on it"


def test_local_time_zone_is_used_in_the_summary() -> None:
    report = make_report(
        [entry("1.0", utc("03:20", day=16), "found it", is_key=True)],
        timezone="America/New_York",
        impact_start=utc("03:00", day=16),
        impact_end=utc("04:45", day=16),
        started_at=utc("03:05", day=16),
    )
    _, blocks = render_summary_blocks(report, None)
    assert (
        blocks[1]["fields"][0]["text"]
        == "*Duration*\n2024-01-15 22:00 to 23:45 (America/New_York), 1 h 45 min"
    )
    assert "• *22:20* alice: found it" in str(blocks)
    assert ZoneInfo("America/New_York")  # the zone database is present on this machine


def test_a_commonmark_parser_sees_only_our_blocks() -> None:
    markdown_it = pytest.importorskip("markdown_it")  # not a dependency yet: checked when present
    parser = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = parser.parse(render_markdown(hostile_report()))
    block_types = {token.type for token in tokens}
    inline_types = {child.type for token in tokens for child in token.children or []}
    assert [token.tag for token in tokens if token.type == "heading_open"] == [
        "h1",
        "h2",
        "h2",
        "h2",
        "h2",
        "h3",
        "h3",
    ]
    assert sum(token.type == "list_item_open" for token in tokens) == 6 + 5 + 2 + 2
    assert block_types <= {
        "heading_open",
        "heading_close",
        "inline",
        "paragraph_open",
        "paragraph_close",
        "bullet_list_open",
        "bullet_list_close",
        "list_item_open",
        "list_item_close",
    }
    assert inline_types <= {
        "text",
        "strong_open",
        "strong_close",
        "em_open",
        "em_close",
        "hardbreak",
        "softbreak",
    }


def test_roles_are_named_in_the_overview_and_the_summary_post() -> None:
    report = make_report(roles={"comms": "U456", "scribe": "U123"}, names={"U123": "Ana", "U456": "Ben"})
    markdown = render_markdown(report)
    assert "**Commander:** Ana · **Comms:** Ben · **Scribe:** Ana" in markdown
    _, blocks = render_summary_blocks(report, None)
    fields = [f["text"] for b in blocks if b.get("fields") for f in b["fields"]]
    assert any(f.startswith("*Comms*") and "<@U456>" in f for f in fields)
