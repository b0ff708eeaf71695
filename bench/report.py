"""`incident-bot report` over 10,000 incidents: how long each format takes, from the database.

    .venv/bin/python bench/report.py [--incidents 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from storage import Database
from storage.schema import incidents, postmortems

ROOT = Path(__file__).resolve().parents[1]


async def seed(url: str, count: int) -> None:
    """Closed incidents every hour from 2025-01-01, with their close forms, in a few statements."""
    db = Database(url)
    await db.start()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows, forms = [], []
    for k in range(count):
        declared = start + timedelta(hours=k)
        rows.append({"id": k + 1, "team_id": "T1", "number": k + 1, "title": f"Incident {k}", "description": "",
                     "severity": f"sev{k % 4 + 1}", "status": "closed", "state": "closed", "is_private": k % 10 == 0,
                     "commander_id": "U1", "declared_by": "U1", "started_at": declared,
                     "closed_at": declared + timedelta(hours=3), "last_activity_at": declared})  # fmt: skip
        forms.append({"incident_id": k + 1, "team_id": "T1", "impact": "x", "root_cause": "y", "resolution": "z",
                      "improvements": "", "submitted_by": "U1", "submitted_at": declared + timedelta(hours=3),
                      "impact_start": declared - timedelta(minutes=k % 9),
                      "impact_end": declared + timedelta(minutes=20 + k % 90)})  # fmt: skip
    try:
        async with db.transaction() as conn:
            await conn.execute(insert(incidents), rows)
            await conn.execute(insert(postmortems), forms)
    finally:
        await db.close()


def timed(url: str, fmt: str) -> tuple[float, int]:
    env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "bot", "report", "--format", fmt], capture_output=True, text=True,
                         env=env, check=True)  # fmt: skip
    return time.perf_counter() - started, len(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'report.db'}"
        asyncio.run(seed(url, args.incidents))
        print(f"report over {args.incidents:,} incidents, SQLite, python {platform.python_version()}")
        print("(wall time of `incident-bot report` as a process: start-up, read, compute, print)")
        for fmt in ("markdown", "csv", "json"):
            seconds, size = timed(url, fmt)
            print(f"  --format {fmt:<8} {seconds:6.2f} s   {size / 1e6:5.1f} MB of output")


if __name__ == "__main__":
    main()
