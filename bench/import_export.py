"""`incident-bot import` of a 50,000-message channel over 60 day files: time and peak memory.

    .venv/bin/python bench/import_export.py [--messages 50000] [--days 60]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = 1_764_547_200  # 2025-12-01 00:00 UTC


def write_export(folder: Path, messages: int, days: int) -> None:
    channel = folder / "inc-9-big"
    channel.mkdir(parents=True)
    (folder / "users.json").write_text(json.dumps([{"id": f"U{n:04d}", "name": f"user{n}"} for n in range(50)]))
    (folder / "channels.json").write_text(json.dumps([{"id": "C0BIG", "name": "inc-9-big"}]))
    per_day = messages // days
    for day in range(days):
        base = START + day * 86_400
        batch = []
        for n in range(per_day):
            ts = f"{base + n}.{n % 1_000_000:06d}"
            message = {"type": "message", "user": f"U{n % 50:04d}", "text": f"update {day}-{n} on <@U0001>", "ts": ts}
            if n % 20 == 1:
                message["thread_ts"] = f"{base + n - 1}.{(n - 1) % 1_000_000:06d}"
            batch.append(message)
        day_name = time.strftime("%Y-%m-%d", time.gmtime(base))
        (channel / f"{day_name}.json").write_text(json.dumps(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = Path(tmp) / "export"
        write_export(folder, args.messages, args.days)
        env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bot.db", "PYTHONPATH": str(ROOT)}
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "bot", "import", str(folder), "--channel", "inc-9-big"],
                             capture_output=True, text=True, env=env, check=True)  # fmt: skip
        seconds = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with sqlite3.connect(f"{tmp}/bot.db") as conn:
            stored = conn.execute("SELECT COUNT(*) FROM timeline_entries WHERE kind != 'system'").fetchone()[0]
    python = platform.python_version()
    print(f"import of {args.messages:,} messages over {args.days} day files, SQLite, python {python}")
    print(f"  {run.stdout.strip()}: {seconds:.1f} s wall, {args.messages / seconds:,.0f} messages/s, "
          f"peak RSS {peak_mib:.0f} MiB; {stored:,} entries stored")
    if stored != args.messages // args.days * args.days:
        sys.exit("FAIL: not every message was stored once")


if __name__ == "__main__":
    main()
