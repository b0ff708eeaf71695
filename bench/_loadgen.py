"""The load generator: reads one job as JSON on stdin, POSTs signed message events, prints a JSON
result. It runs as its own process (started by _common.run_loadgen), so it has its own core and
does not share the server's event loop. Requests are built and signed before the clock starts.

Jobs:
  {"mode": "closed", "url", "secret", "channel", "start", "count", "concurrency"}
      `concurrency` senders, each sending its next event as soon as the previous one is acked.
  {"mode": "open", "url", "secret", "channel", "start", "rate", "seconds"}
      one send every 1/rate s on a fixed schedule whatever the completions; a request's latency
      is counted from its scheduled time, so queueing in the generator is not hidden.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
from _common import latency_summary, message_body, signed_headers

Prepared = list[tuple[bytes, dict[str, str]]]


def prepare(job: dict[str, Any], count: int) -> Prepared:
    bodies = (message_body(job["channel"], job["start"] + i) for i in range(count))
    return [(body, signed_headers(job["secret"], body)) for body in bodies]


class Recorder:
    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.latencies: list[float] = []
        self.first = float("inf")
        self.last = 0.0

    async def send(self, session: aiohttp.ClientSession, url: str, request: tuple[bytes, dict[str, str]],
                   since: float | None = None) -> None:
        body, headers = request
        began = time.perf_counter()
        self.first = min(self.first, began)
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = type(exc).__name__
        done = time.perf_counter()
        self.last = max(self.last, done)
        self.latencies.append(done - (since if since is not None else began))
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def result(self, **extra: Any) -> dict[str, Any]:
        elapsed = self.last - self.first
        return {
            "sent": len(self.latencies),
            "ok": self.statuses.get("200", 0),
            "statuses": self.statuses,
            "elapsed_s": elapsed,
            "per_s": len(self.latencies) / elapsed if elapsed > 0 else 0.0,
            **latency_summary(self.latencies),
            **extra,
        }


async def closed_loop(job: dict[str, Any]) -> dict[str, Any]:
    requests = prepare(job, job["count"])
    recorder = Recorder()
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=job["concurrency"])
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def sender() -> None:
            for request in queue:
                await recorder.send(session, job["url"], request)

        await asyncio.gather(*(sender() for _ in range(job["concurrency"])))
    return recorder.result()


async def open_loop(job: dict[str, Any]) -> dict[str, Any]:
    rate = float(job["rate"])
    requests = prepare(job, int(rate * job["seconds"]))
    recorder = Recorder()
    tasks: list[asyncio.Task[None]] = []
    max_lag = 0.0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        start = time.perf_counter() + 0.05
        for i, request in enumerate(requests):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            max_lag = max(max_lag, time.perf_counter() - due)
            tasks.append(asyncio.create_task(recorder.send(session, job["url"], request, since=due)))
        await asyncio.gather(*tasks)
    return recorder.result(generator_max_lag_ms=max_lag * 1000)


def main() -> None:
    job = json.load(sys.stdin)
    run = closed_loop if job["mode"] == "closed" else open_loop
    print(json.dumps(asyncio.run(run(job))))


if __name__ == "__main__":
    main()
