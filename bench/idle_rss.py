"""Idle memory of the real process (DESIGN §4: idle RSS under 100 MB), and how it shuts down.

Starts `python -m bot` (HTTP mode) as a subprocess against a LocalSlack run in this process, with a
temporary SQLite file and a free port; waits for GET /healthz to answer 200, lets it idle, reads
VmRSS (and VmHWM, the peak) from /proc/<pid>/status, then sends SIGTERM and times the exit.

    .venv/bin/python bench/idle_rss.py [--idle 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from _common import SIGNING_SECRET, clear_proxies, free_port

from sandbox import LocalSlack

TARGET_MB = 100
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def kb_to_mb(value: str) -> float:
    return int(value.split()[0]) / 1024


async def wait_healthy(proc: asyncio.subprocess.Process, url: str) -> float:
    began = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while time.perf_counter() - began < START_TIMEOUT_S:
            if proc.returncode is not None:
                raise RuntimeError(f"the bot exited with {proc.returncode} before it was healthy")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return time.perf_counter() - began
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"no 200 from {url} within {START_TIMEOUT_S:g} s")


async def run(idle_s: float) -> None:
    clear_proxies()
    slack = LocalSlack(signing_secret=SIGNING_SECRET, spec_path=None)
    await slack.start()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'bot.db'}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
        }
        env.pop("SLACK_APP_TOKEN", None)
        # cwd is the temp dir, so no .env file of the checkout is read.
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", env=env, cwd=tmp)
        try:
            ready_s = await wait_healthy(proc, f"http://127.0.0.1:{port}/healthz")
            await asyncio.sleep(idle_s)
            status = proc_status(proc.pid)
        except BaseException:
            proc.kill()
            await proc.wait()
            raise
        stop_began = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            code = await proc.wait()
            print(f"did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM: killed")
        stop_s = time.perf_counter() - stop_began
    await slack.stop()
    rss = kb_to_mb(status["VmRSS"])
    print(f"python -m bot (HTTP mode, SQLite), pid {proc.pid}: healthy after {ready_s:.2f} s")
    print(f"idle RSS after {idle_s:g} s: {rss:.1f} MB (peak VmHWM {kb_to_mb(status['VmHWM']):.1f} MB, "
          f"threads {status['Threads']})  target < {TARGET_MB} MB: {'met' if rss < TARGET_MB else 'MISSED'}")
    print(f"SIGTERM -> exit code {code} after {stop_s * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading RSS (default 3)")
    asyncio.run(run(parser.parse_args().idle))


if __name__ == "__main__":
    main()
