"""Helpers the benchmarks share: signing like Slack, message event bodies, figures, the load
generator process. Only the standard library here, so the load generator starts light; the
local Slack is imported where it is used."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SIGNING_SECRET = "bench-signing-secret"
TEAM_ID = "T0LOCAL"
API_APP_ID = "A0LOCAL"
BOT_USER_ID = "U0BOT"
SENDER = "U0BENCH"  # the author of every benchmark message, so rows can be counted back
ALICE = "U0ALICE"
SLACK_ACK_LIMIT_MS = 3000  # Slack counts a later ack as a failed delivery and retries


def clear_proxies() -> None:
    """slack-sdk and aiohttp honour proxy variables (and slack-sdk ignores NO_PROXY)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(var, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- requests as Slack sends them -------------------------------------------------------------


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def message_body(channel: str, index: int) -> bytes:
    """An event_callback for one channel message; index makes ts and event_id unique."""
    ts = f"{1_700_000_000 + index // 1_000_000}.{index % 1_000_000:06d}"
    event_id = f"Ev{index:012d}"
    envelope = {
        "token": "bench-verification-token",
        "team_id": TEAM_ID,
        "context_team_id": TEAM_ID,
        "context_enterprise_id": None,
        "api_app_id": API_APP_ID,
        "event": {
            "type": "message",
            "channel": channel,
            "user": SENDER,
            "text": f"benchmark message {index}: error rate back under 1% on checkout-api",
            "ts": ts,
            "event_ts": ts,
            "channel_type": "channel",
            "team": TEAM_ID,
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [
            {"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
             "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-bench-{event_id}",
    }
    return json.dumps(envelope).encode()


# ---- figures ----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[rank]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    values = sorted(x * 1000 for x in latencies_s)
    return {
        "p50_ms": percentile(values, 0.50),
        "p90_ms": percentile(values, 0.90),
        "p99_ms": percentile(values, 0.99),
        "max_ms": values[-1] if values else float("nan"),
        "over_3s": sum(1 for x in values if x > SLACK_ACK_LIMIT_MS),
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


# ---- the load generator, in its own process ---------------------------------------------------


async def run_loadgen(job: dict[str, Any]) -> dict[str, Any]:
    """Runs bench/_loadgen.py with this job (JSON on stdin) and returns its JSON result.
    A separate process, so the generator gets its own core and its own event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH_DIR / "_loadgen.py"),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(json.dumps(job).encode())
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}) on {job['mode']} to {job['url']}")
    result: dict[str, Any] = json.loads(out)
    return result
