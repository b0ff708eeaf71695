"""Alert payloads of each source, from samples shaped as their projects document them."""

from __future__ import annotations

import json
import pathlib
from datetime import UTC, datetime

import pytest

from bot.domain.alerts import AlertFormatError, AlertStatus, parse
from bot.domain.models import Severity

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "alerts"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_alertmanager_group_reads_key_title_severity_and_earliest_start() -> None:
    notice = parse("alertmanager", sample("alertmanager_firing.json"))
    assert notice.dedup_key.startswith("{}/{severity=") and notice.status is AlertStatus.FIRING
    assert notice.title == "Checkout 5xx rate above 5%" and notice.severity is Severity.SEV1
    assert notice.started_at == datetime(2026, 12, 4, 9, 58, 12, 345678, tzinfo=UTC)  # nanoseconds cut
    assert notice.ended_at is None and set(notice.alerts.values()) == {"firing"}
    assert "instance=checkout-1:8080" in notice.lines[0]


def test_alertmanager_resolution_takes_the_latest_end() -> None:
    notice = parse("alertmanager", sample("alertmanager_resolved.json"))
    assert notice.status is AlertStatus.RESOLVED
    assert notice.ended_at == datetime(2026, 12, 4, 10, 43, 30, tzinfo=UTC)


def test_grafana_uses_its_title_and_offsets() -> None:
    notice = parse("grafana", sample("grafana_firing.json"))
    assert notice.title == "[FIRING:1] DiskFull Infra (db-1 warning)" and notice.severity is Severity.SEV3
    assert notice.started_at == datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


def test_pagerduty_priority_wins_over_urgency_and_events_map_to_statuses() -> None:
    fired = parse("pagerduty", sample("pagerduty_triggered.json"))
    assert (fired.dedup_key, fired.status, fired.severity) == ("PGR0VU2", AlertStatus.FIRING, Severity.SEV1)
    assert fired.started_at == datetime(2026, 12, 4, 10, 1, 38, tzinfo=UTC)
    assert parse("pagerduty", sample("pagerduty_acknowledged.json")).status is AlertStatus.ACKNOWLEDGED
    done = parse("pagerduty", sample("pagerduty_resolved.json"))
    assert done.status is AlertStatus.RESOLVED and done.ended_at == datetime(2026, 12, 4, 10, 52, 10, tzinfo=UTC)


def test_generic_alert() -> None:
    notice = parse("generic", sample("generic_firing.json"))
    assert (notice.dedup_key, notice.severity, notice.title) == ("backup-2026-12-04", Severity.SEV2,
                                                                "Nightly backup failed")
    assert notice.started_at == datetime(2026, 12, 4, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(("source", "body", "says"), [
    ("alertmanager", b"not json", "not JSON"),
    ("alertmanager", b"[1, 2]", "JSON object"),
    ("alertmanager", json.dumps({"status": "firing", "alerts": []}).encode(), "groupKey"),
    ("grafana", sample("pagerduty_triggered.json"), "groupKey"),
    ("pagerduty", sample("alertmanager_firing.json"), "event.event_type"),
    ("generic", json.dumps({"title": "x", "status": "firing"}).encode(), "dedup_key"),
    ("generic", json.dumps({"title": "x", "dedup_key": "k", "status": "on fire"}).encode(), "status"),
    ("generic", json.dumps({"title": "x", "dedup_key": "k", "status": "firing", "started_at": "yesterday"}).encode(),
     "RFC 3339"),
    ("nagios", b"{}", "unknown source"),
])  # fmt: skip
def test_bad_payloads_get_one_line_reasons(source: str, body: bytes, says: str) -> None:
    with pytest.raises(AlertFormatError, match=says) as caught:
        parse(source, body)
    assert "\n" not in str(caught.value)
