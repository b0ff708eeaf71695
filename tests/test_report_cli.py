"""`incident-bot report`, run as an operator would, over incidents seeded in a database."""

from __future__ import annotations

import csv
import io
import json
import pathlib
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.domain.models import CloseForm, NewTask, Severity, Status
from bot.domain.report import p90
from storage import Database, Store
from tests.test_config_cli import run_bot

T0 = datetime(2026, 11, 2, 10, 5, tzinfo=UTC)


async def seed(url: str) -> None:
    db = Database(url)
    await db.start()
    store = Store(db)
    try:
        def values(title: str, severity: Severity, at: datetime, **extra: object) -> dict[str, object]:
            return {"title": title, "severity": severity, "status": Status.INVESTIGATING, "commander_id": "U1",
                    "declared_by": "U1", "started_at": at, "last_activity_at": at, **extra}  # fmt: skip

        first = await store.create_incident("T1", values("Checkout | 500s", Severity.SEV1, T0))
        first = await store.update_incident(first.id, state="open", channel_id="C1")
        form = CloseForm(impact="x", impact_start=T0 - timedelta(minutes=5), impact_end=T0 + timedelta(minutes=45),
                         root_cause="y", resolution="z", improvements=[], submitted_by="U1",
                         submitted_at=T0 + timedelta(days=1))  # fmt: skip
        planned = [(NewTask(description="a", owner_id="U2", due_date=date(2026, 11, 5)), None),
                   (NewTask(description="b", owner_id="U2"), None)]  # fmt: skip
        closed = await store.close_incident(first, form, planned)
        assert closed is not None
        await store.complete_task(closed[1][1].id, "U2", T0 + timedelta(days=2))
        second = await store.create_incident("T1", values(
            "PII exposed", Severity.SEV1, T0 + timedelta(days=3), is_private=True,
            impact_started_at=T0 + timedelta(days=3, minutes=-20), impact_ended_at=T0 + timedelta(days=3, hours=2)))
        await store.update_incident(second.id, state="open", channel_id="C2", status=Status.RESOLVED)
        december = datetime(2026, 12, 1, tzinfo=UTC)
        third = await store.create_incident("T1", values("Slow search", Severity.SEV3, december))
        await store.update_incident(third.id, state="open", channel_id="C3")
        await store.close()
    finally:
        await db.close()


@pytest.fixture
async def reported(tmp_path: pathlib.Path) -> tuple[pathlib.Path, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await seed(url)
    return tmp_path, url


def test_json_rows_and_totals(reported: tuple[pathlib.Path, str]) -> None:
    cwd, url = reported
    run = run_bot(cwd, "report", "--format", "json", DATABASE_URL=url, TIMEZONE="UTC")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    first, second, third = data["incidents"]
    assert (first["ref"], first["time_to_detect_min"], first["time_to_resolve_min"]) == ("INC-1", 5, 50)
    assert first["time_to_close_min"] == 1440 and (first["tasks_done"], first["tasks_open"]) == (1, 1)
    assert first["declared_at"] == "2026-11-02T10:05:00Z" and first["tasks_overdue"] == 1
    assert second["private"] is True and (second["time_to_detect_min"], second["time_to_resolve_min"]) == (20, 140)
    assert third["time_to_resolve_min"] is None and third["impact_start"] is None
    sev1 = data["totals"]["by_severity"]["sev1"]
    assert sev1["count"] == 2 and sev1["time_to_detect_median_min"] == 12.5 and sev1["time_to_resolve_p90_min"] == 140
    assert set(data["totals"]["by_month"]) == {"2026-11", "2026-12"} and data["totals"]["tasks_completion_rate"] == 0.5


def test_csv_opens_as_a_table_and_the_period_filters_on_declared(reported: tuple[pathlib.Path, str]) -> None:
    cwd, url = reported
    run = run_bot(cwd, "report", "--format", "csv", "--since", "2026-11-03", "--until", "2026-11-30",
                  DATABASE_URL=url)  # fmt: skip
    assert run.returncode == 0, run.stderr
    table = list(csv.DictReader(io.StringIO(run.stdout)))
    assert [r["ref"] for r in table] == ["INC-2"] and table[0]["private"] == "true"
    header = run.stdout.splitlines()[0].split(",")
    assert header[:11] == ["ref", "title", "severity", "private", "declared_at", "impact_start", "impact_end",
                           "time_to_detect_min", "time_to_resolve_min", "tasks_open", "tasks_done"]  # fmt: skip


def test_markdown_by_default(reported: tuple[pathlib.Path, str]) -> None:
    cwd, url = reported
    run = run_bot(cwd, "report", DATABASE_URL=url)
    assert run.returncode == 0, run.stderr
    assert "| INC-1 | Checkout \\| 500s |" in run.stdout and "PII exposed (private)" in run.stdout
    assert "## By severity" in run.stdout and "Tasks completed: 50 %." in run.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--since", "2026-13-01"], "--since '2026-13-01' is not a date"),
    (["--since", "2026-12-02", "--until", "2026-12-01"], "is before --since"),
    (["--format", "xml"], "--format 'xml' is not one of markdown, csv, json"),
    (["--since", "2027-01-01"], "no incident was declared since 2027-01-01"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(reported: tuple[pathlib.Path, str], args: list[str], says: str) -> None:
    cwd, url = reported
    run = run_bot(cwd, "report", *args, DATABASE_URL=url)
    assert run.returncode == 2 and says in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stdout == ""


def test_nearest_rank_p90() -> None:
    assert p90([]) is None and p90([7]) == 7
    assert p90(list(range(1, 11))) == 9 and p90(list(range(1, 21))) == 18


async def seed_many(url: str, count: int, team: str = "T1") -> list[dict[str, object]]:
    """`count` closed incidents every ~2.1 days from 2025-10-01 (about 14 months for 200), with
    known times; returns what each should report."""
    db = Database(url)
    await db.start()
    store = Store(db)
    start = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
    expected = []
    try:
        for k in range(count):
            declared = start + timedelta(hours=50 * k)
            severity = list(Severity)[k % 4]
            detect, resolve = k % 7, 10 + k % 50
            made = await store.create_incident(team, {
                "title": f"Incident {k}", "severity": severity, "status": Status.INVESTIGATING, "commander_id": "U1",
                "declared_by": "U1", "started_at": declared, "last_activity_at": declared})  # fmt: skip
            made = await store.update_incident(made.id, state="open", channel_id=f"C{k}")
            impact_start = declared - timedelta(minutes=detect)
            impact_end = impact_start + timedelta(minutes=resolve)
            form = CloseForm(impact="x", impact_start=impact_start, impact_end=impact_end,
                             root_cause="y", resolution="z", improvements=[], submitted_by="U1",
                             submitted_at=declared + timedelta(hours=1))  # fmt: skip
            await store.close_incident(made, form, [])
            expected.append({"severity": severity.value, "detect": detect, "resolve": resolve,
                             "month": declared.strftime("%Y-%m")})  # fmt: skip
        await store.close()
    finally:
        await db.close()
    return expected


def nearest_rank_p90(values: list[int]) -> int:
    ordered = sorted(values)
    rank = -(-9 * len(ordered) // 10)  # ceil(0.9 n), exact in integers
    return ordered[rank - 1]


async def test_two_hundred_incidents_over_fourteen_months_give_exact_figures(tmp_path: pathlib.Path) -> None:
    import statistics

    url = f"sqlite+aiosqlite:///{tmp_path / 'many.db'}"
    expected = await seed_many(url, 200)
    run = run_bot(tmp_path, "report", "--format", "json", DATABASE_URL=url, TIMEZONE="UTC")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert len(data["incidents"]) == 200 and data["totals"]["count"] == 200
    months = {e["month"] for e in expected}
    assert set(data["totals"]["by_month"]) == months and len(months) == 14
    for severity in ("sev1", "sev2", "sev3", "sev4"):
        mine = [e for e in expected if e["severity"] == severity]
        got = data["totals"]["by_severity"][severity]
        assert got["count"] == len(mine) == 50
        assert got["time_to_detect_median_min"] == statistics.median([e["detect"] for e in mine])
        assert got["time_to_resolve_median_min"] == statistics.median([e["resolve"] for e in mine])
        assert got["time_to_resolve_p90_min"] == nearest_rank_p90([int(e["resolve"]) for e in mine])  # type: ignore[arg-type]
    for month in months:
        mine = [e for e in expected if e["month"] == month]
        assert data["totals"]["by_month"][month]["count"] == len(mine)
    csv_run = run_bot(tmp_path, "report", "--format", "csv", DATABASE_URL=url)
    assert len(csv_run.stdout.splitlines()) == 201
    md_run = run_bot(tmp_path, "report", DATABASE_URL=url)
    assert md_run.stdout.count("| INC-") == 200
