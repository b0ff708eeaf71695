"""Replaying example-3's timeline as channel messages yields a postmortem that reads like it."""

from __future__ import annotations

import pathlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import ManualClock
from sandbox import LocalSlack
from sandbox.forms import fill_view
from tests.conftest import ALICE, BOB, CAROL, BotFactory, general
from tests.support import command, open_view, start_incident

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "shared" / "postmortems" / "example-3.txt"
DAY = datetime(2024, 1, 15, tzinfo=UTC)
LINE = re.compile(r"^(\d{1,2}):(\d{2}) PM: (.+)$")


def example_timeline() -> list[tuple[datetime, str]]:
    entries = []
    for line in EXAMPLE.read_text(encoding="utf-8", errors="replace").splitlines():
        match = LINE.match(line.strip())
        if match:
            hour, minute = int(match.group(1)) + 12, int(match.group(2))
            entries.append((DAY + timedelta(hours=hour, minutes=minute), match.group(3).strip()))
    return entries


@pytest.mark.skipif(not EXAMPLE.exists(), reason="shared/postmortems not beside the repository")
async def test_replay_of_example_3(slack_at: LocalSlack, clock: ManualClock, start_bot: BotFactory) -> None:
    timeline = example_timeline()
    assert len(timeline) == 7
    clock.set(timeline[0][0])
    bot = await start_bot(slack_at, clock=clock)
    row = await start_incident(slack_at, bot, "Web application and API return HTTP 500", ALICE, general(slack_at))
    channel = str(row["channel_id"])
    authors = [BOB, CAROL, ALICE]
    for n, (when, text) in enumerate(timeline):
        clock.set(when)
        await slack_at.post_message(channel, user=authors[n % 3], text=text, at=when)
    clock.set(DAY + timedelta(hours=23, minutes=50))
    await command(slack_at, bot, "close", ALICE, channel)
    record = open_view(slack_at, "incident_close")
    answers = {
        "impact": "30% of users: the web application and API endpoints were completely unavailable.",
        "impact_start": DAY + timedelta(hours=22), "impact_end": DAY + timedelta(hours=23, minutes=45),
        "root_cause": "Misconfiguration in the load balancer settings led to incorrect routing of incoming requests, "
                      "causing a portion of the traffic to be directed to non-responsive backend servers.",
        "resolution": "The load balancer settings were corrected, routing requests to healthy backend servers.",
        "improvements": "Stricter configuration management for critical infrastructure\n"
                        "Monitoring and alerting on load balancer configuration changes\n"
                        "Regular audits of infrastructure configuration",
        "task_description_1": "Review the load balancer configurations for further misconfigurations",
        "task_owner_1": BOB, "task_due_1": datetime(2024, 1, 22).date(),
        "task_description_2": "Automated configuration validation checks for critical infrastructure",
        "task_owner_2": CAROL, "task_due_2": datetime(2024, 1, 29).date(),
        "task_description_3": "Training on infrastructure configuration best practices",
        "task_owner_3": ALICE, "task_due_3": datetime(2024, 2, 15).date(),
    }
    await slack_at.submit_view(record["id"], fill_view(record["view"], answers), user_id=ALICE)
    assert await bot.idle()

    [upload] = [f for f in slack_at.files.values() if channel in f["channels"]]
    markdown = upload["content"].decode()
    positions = []
    for when, text in timeline:
        words = text[:40].replace(".", "\\.")
        line = next((ln for ln in markdown.splitlines() if f"**{when:%H:%M}**" in ln and words in ln), None)
        assert line is not None, f"{when:%H:%M} {text[:40]} missing from:\n{markdown}"
        positions.append(markdown.index(line))
    assert positions == sorted(positions)
    headings = ["## Issue Summary", "## Timeline", "## Root Cause and Resolution",
                "## Corrective and Preventative Measures"]
    assert [markdown.index(h) for h in headings] == sorted(markdown.index(h) for h in headings)
    assert "22:00 to 23:45" in markdown and "1 h 45 min" in markdown
    assert "Misconfiguration in the load balancer settings" in markdown
    assert "owner: @bob, due 2024-01-22" in markdown and "owner: @alice, due 2024-02-15" in markdown
