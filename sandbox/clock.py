"""Time helpers: the injectable clock and Slack's message timestamp format."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def real_clock() -> datetime:
    return datetime.now(UTC)


def ts_from_datetime(moment: datetime) -> str:
    """Slack ts: whole epoch seconds, a dot, then six digits of microseconds."""
    micros = to_micros(moment)
    return micros_to_ts(micros)


def to_micros(moment: datetime) -> int:
    # Integer arithmetic avoids float rounding turning .000001 into .000000.
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def micros_to_ts(micros: int) -> str:
    seconds, micro = divmod(micros, 1_000_000)
    return f"{seconds}.{micro:06d}"


def ts_to_micros(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])


def ts_sort_key(ts: str) -> int:
    return ts_to_micros(ts)


class TsAllocator:
    """Hands out message timestamps that never repeat or go backwards in a channel.

    Slack guarantees ts uniqueness per channel; the bot keys incidents by ts,
    so a frozen test clock must still produce distinct values.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def allocate(self, channel: str, moment: datetime) -> str:
        wanted = to_micros(moment)
        last = self._last.get(channel)
        if last is not None and wanted <= last:
            wanted = last + 1
        self._last[channel] = wanted
        return micros_to_ts(wanted)

    def claim(self, channel: str, ts: str) -> None:
        """Record an explicitly chosen ts so later allocations stay after it."""
        micros = ts_to_micros(ts)
        self._last[channel] = max(self._last.get(channel, micros), micros)
