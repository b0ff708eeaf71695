"""Pure rules: grammar, channel names, backdating, reminder days, close-form checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.domain import rules
from bot.domain.closeout import CloseInput, TaskRow, validate_close

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # the day Berlin moves to summer time (02:00 -> 03:00)


@pytest.mark.parametrize(("title", "name"), [
    ("Checkout returns 500s", "inc-7-checkout-returns-500s"),
    ("🔥🔥🔥", "inc-7"),
    ("<!channel> DB *down*", "inc-7-db-down"),
    ("x" * 300, "inc-7-" + "x" * 74),
])
def test_channel_names_are_valid(title: str, name: str) -> None:
    assert rules.channel_name(7, title) == name
    assert len(name) <= 80


def test_note_time_is_local_and_survives_a_dst_change() -> None:
    at, text = rules.parse_note("01:30 paged the on-call", NOW, BERLIN)
    assert at == datetime(2026, 3, 29, 0, 30, tzinfo=UTC) and text == "paged the on-call"  # 01:30 CET
    at, _ = rules.parse_note("13:00 later today", NOW, BERLIN)
    assert at == datetime(2026, 3, 29, 11, 0, tzinfo=UTC)  # 13:00 CEST
    at, _ = rules.parse_note("15:00 not yet happened", NOW, BERLIN)
    assert at.astimezone(BERLIN).date() == date(2026, 3, 28)  # a time still to come means yesterday
    assert rules.parse_note("no time here", NOW, BERLIN) == (NOW, "no time here")
    with pytest.raises(rules.UsageError):
        rules.parse_note("  ", NOW, BERLIN)


def test_task_grammar() -> None:
    today = date(2026, 11, 23)
    parsed = rules.parse_task("<@U1|ann> Audit the LB due 2026-11-30", today)
    assert parsed == ("U1", "Audit the LB", date(2026, 11, 30))
    assert rules.parse_task("<@U1> Write a runbook", today) == ("U1", "Write a runbook", None)
    for bad in ("ann Audit", "<@U1>", "<@U1> Audit due 2026-11-01", "<@U1> Audit due 2026-13-01"):
        with pytest.raises(rules.UsageError):
            rules.parse_task(bad, today)


def test_reminder_days() -> None:
    today = date(2026, 11, 23)
    assert rules.first_reminder_day(date(2026, 11, 30), today) == date(2026, 11, 30)
    assert rules.first_reminder_day(None, today) == date(2026, 11, 30)
    assert rules.next_reminder_day(date(2026, 11, 20), today) == date(2026, 11, 24)  # overdue: daily
    assert rules.next_reminder_day(None, today) == date(2026, 11, 30)  # undated: weekly
    assert rules.snoozed_until(today, 1) == date(2026, 11, 25)
    assert rules.snoozed_until(today, 7) == date(2026, 12, 1)
    assert not rules.reminders_allowed(datetime(2026, 11, 23, 7, 59, tzinfo=UTC), BERLIN, time(9, 0))
    assert rules.reminders_allowed(datetime(2026, 11, 23, 8, 0, tzinfo=UTC), BERLIN, time(9, 0))


def test_close_form_errors_are_per_field() -> None:
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    data = CloseInput(impact="", impact_start=start, impact_end=start.replace(hour=8), root_cause=" ",
                      resolution="fixed", tasks=[TaskRow(1, "audit", None, None), TaskRow(2),
                                                 TaskRow(3, "", "U1", date(2026, 11, 1))])
    errors = validate_close(data, "U1", NOW.replace(month=11, day=23), date(2026, 11, 23))
    assert isinstance(errors, dict)
    assert set(errors) == {"impact", "impact_end", "root_cause", "task_owner_1", "task_description_3", "task_due_3"}


def test_valid_close_form_skips_blank_rows() -> None:
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    data = CloseInput(impact="30% of users", impact_start=start, impact_end=start.replace(hour=10),
                      root_cause="LB config", resolution="reverted", improvements="- audits\n\n• alerts",
                      tasks=[TaskRow(1, "audit", "U1", date(2026, 11, 30)), TaskRow(2)])
    result = validate_close(data, "U9", datetime(2026, 11, 23, 11, 0, tzinfo=UTC), date(2026, 11, 23))
    assert not isinstance(result, dict)
    form, tasks = result
    assert form.improvements == ["audits", "alerts"] and form.submitted_by == "U9"
    assert [(t.description, t.owner_id) for t in tasks] == [("audit", "U1")]
