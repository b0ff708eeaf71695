"""Alert notifications from monitoring systems, read into one shape. Pure: bytes in, values out.

Formats, as their projects document them:
- Alertmanager webhook, version 4 (Grafana's Alertmanager-compatible contact point sends the same).
- Grafana webhook contact point: the Alertmanager fields plus `title`, `state`, `message`, `orgId`.
- PagerDuty V3 webhooks: `{"event": {"event_type": "incident.triggered", "data": {...}}}`.
- generic: `{"title", "status": "firing"|"resolved", "dedup_key", "severity"?, "description"?,
  "url"?, "started_at"?}` for anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bot.domain.models import Severity

# What `severity` labels, PagerDuty urgencies and priorities mean in our four levels.
SEVERITY_WORDS = {
    "critical": Severity.SEV1, "p1": Severity.SEV1, "sev1": Severity.SEV1, "page": Severity.SEV1,
    "high": Severity.SEV2, "error": Severity.SEV2, "p2": Severity.SEV2, "sev2": Severity.SEV2,
    "warning": Severity.SEV3, "p3": Severity.SEV3, "sev3": Severity.SEV3, "medium": Severity.SEV3,
    "info": Severity.SEV4, "low": Severity.SEV4, "p4": Severity.SEV4, "p5": Severity.SEV4, "sev4": Severity.SEV4,
}  # fmt: skip
SOURCE_NAMES = {"alertmanager": "Alertmanager", "grafana": "Grafana", "pagerduty": "PagerDuty", "generic": "Alert"}
TITLE_LIMIT = 150
# Alertmanager's "zero" endsAt for an alert still firing.
GO_ZERO_TIME_YEAR = 1


class AlertFormatError(ValueError):
    """The body is not this source's format; the message is one line for the sender."""


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"  # PagerDuty: someone is on it; an entry, nothing more
    OTHER = "other"  # PagerDuty reassigned, escalated, annotated…: an entry


@dataclass(frozen=True)
class AlertNotice:
    source: str
    dedup_key: str
    status: AlertStatus
    title: str
    severity: Severity
    started_at: datetime | None = None  # the earliest startsAt: when the impact began
    ended_at: datetime | None = None  # all resolved: the latest endsAt
    url: str = ""
    description: str = ""
    # fingerprint → firing|resolved, so a resend that says nothing new adds no entry
    alerts: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # what each alert says, for the timeline

    @property
    def source_name(self) -> str:
        return SOURCE_NAMES[self.source]


def parse(source: str, body: bytes) -> AlertNotice:
    if source not in SOURCE_NAMES:
        raise AlertFormatError(f"unknown source {source!r}: use alertmanager, grafana, pagerduty or generic")
    data = _json_object(body)
    if source == "pagerduty":
        return _pagerduty(data)
    if source == "generic":
        return _generic(data)
    return _alertmanager(source, data)


def severity_of(word: object, default: Severity = Severity.SEV2) -> Severity:
    return SEVERITY_WORDS.get(str(word or "").strip().lower(), default)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AlertFormatError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise AlertFormatError("the body is not a JSON object")
    return data


def _alertmanager(source: str, data: dict[str, Any]) -> AlertNotice:
    alerts = data.get("alerts")
    key, status = data.get("groupKey"), data.get("status")
    if not isinstance(alerts, list) or not isinstance(key, str) or not key or status not in ("firing", "resolved"):
        raise AlertFormatError(f"not a {SOURCE_NAMES[source]} webhook: it needs groupKey, status and alerts[]")
    alerts = [a for a in alerts if isinstance(a, dict)]
    common = _strings(data.get("commonLabels")) | _strings(data.get("groupLabels"))
    annotations = _strings(data.get("commonAnnotations"))
    first = alerts[0] if alerts else {}
    labels = common | _strings(first.get("labels"))
    title = str(data.get("title") or "") if source == "grafana" else ""
    title = title or annotations.get("summary") or _strings(first.get("annotations")).get("summary") or ""
    title = title or labels.get("alertname") or "Alert"
    starts = [t for a in alerts if (t := _time(a.get("startsAt")))]
    ends = [t for a in alerts if (t := _time(a.get("endsAt")))]
    return AlertNotice(
        source=source,
        dedup_key=key,
        status=AlertStatus(status),
        title=_clip(title),
        severity=severity_of(labels.get("severity")),
        started_at=min(starts, default=None),
        ended_at=max(ends, default=None) if status == "resolved" else None,
        url=str(first.get("panelURL") or first.get("dashboardURL") or first.get("generatorURL")
                or data.get("externalURL") or ""),  # fmt: skip
        description=str(data.get("message") or annotations.get("description") or ""),
        alerts={_fingerprint(a, n): str(a.get("status") or status) for n, a in enumerate(alerts)},
        lines=[_alert_line(a, status) for a in alerts],
    )


def _alert_line(alert: dict[str, Any], group_status: str) -> str:
    labels, annotations = _strings(alert.get("labels")), _strings(alert.get("annotations"))
    name = labels.get("alertname") or "alert"
    where = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
    said = annotations.get("summary") or annotations.get("description") or ""
    parts = [f"{name} {alert.get('status') or group_status}", f"({where})" if where else "", said]
    return " ".join(p for p in parts if p)


def _fingerprint(alert: dict[str, Any], n: int) -> str:
    found = alert.get("fingerprint")
    if isinstance(found, str) and found:
        return found
    labels = _strings(alert.get("labels"))
    return json.dumps(sorted(labels.items())) if labels else f"alert-{n}"


def _pagerduty(data: dict[str, Any]) -> AlertNotice:
    event = data.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
        raise AlertFormatError("not a PagerDuty V3 webhook: it needs event.event_type")
    incident = event.get("data")
    if not isinstance(incident, dict) or not incident.get("id"):
        raise AlertFormatError("not a PagerDuty incident event: it needs event.data.id")
    kind = str(event["event_type"])
    status = {"incident.triggered": AlertStatus.FIRING, "incident.reopened": AlertStatus.FIRING,
              "incident.resolved": AlertStatus.RESOLVED, "incident.acknowledged": AlertStatus.ACKNOWLEDGED,
              }.get(kind, AlertStatus.OTHER)  # fmt: skip
    priority = (incident.get("priority") or {}).get("summary") if isinstance(incident.get("priority"), dict) else None
    severity = severity_of(priority, severity_of(incident.get("urgency")))
    service = _strings(incident.get("service"))
    occurred = _time(event.get("occurred_at"))
    title = str(incident.get("title") or f"PagerDuty incident {incident.get('number') or incident['id']}")
    line = f"{kind.removeprefix('incident.')}: {title}"
    if service.get("summary"):
        line += f" (service {service['summary']})"
    return AlertNotice(
        source="pagerduty",
        dedup_key=str(incident["id"]),
        status=status,
        title=_clip(title),
        severity=severity,
        started_at=_time(incident.get("created_at")) or (occurred if status is AlertStatus.FIRING else None),
        ended_at=occurred if status is AlertStatus.RESOLVED else None,
        url=str(incident.get("html_url") or ""),
        # A retried delivery (same event id) changes nothing; each new acknowledgement or
        # reassignment is an entry of its own.
        alerts={str(incident["id"]): _pagerduty_state(status, kind, event)},
        lines=[line],
    )


def _pagerduty_state(status: AlertStatus, kind: str, event: dict[str, Any]) -> str:
    if status in (AlertStatus.FIRING, AlertStatus.RESOLVED):
        return status.value
    return f"{kind}@{event.get('id') or event.get('occurred_at') or ''}"


def _generic(data: dict[str, Any]) -> AlertNotice:
    title, key, status = data.get("title"), data.get("dedup_key"), data.get("status")
    if not isinstance(title, str) or not title.strip() or not isinstance(key, str) or not key.strip():
        raise AlertFormatError("a generic alert needs a title and a dedup_key (strings)")
    if status not in ("firing", "resolved"):
        raise AlertFormatError('a generic alert needs status "firing" or "resolved"')
    started = data.get("started_at")
    started_at = _time(started)
    if started is not None and started_at is None:
        raise AlertFormatError("started_at must be an RFC 3339 time, e.g. 2026-12-04T10:15:00Z")
    description = str(data.get("description") or "")
    return AlertNotice(
        source="generic",
        dedup_key=key.strip(),
        status=AlertStatus(status),
        title=_clip(title),
        severity=severity_of(data.get("severity")),
        started_at=started_at,
        url=str(data.get("url") or ""),
        description=description,
        alerts={key.strip(): str(status)},
        lines=[f"{status}: {title.strip()}" + (f" — {description}" if description else "")],
    )


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Go prints nanoseconds; Python takes microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.year <= GO_ZERO_TIME_YEAR:
        return None
    return moment.astimezone(UTC)


def _clip(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"
