"""A tiny load balancer for tests: POST /slack/events on 127.0.0.1, forwarded byte for byte (body
and Slack's headers, X-Slack-Retry-Num included) to one of N bot processes, whose answer it
returns. Round-robin unless the test says where the next request goes. A backend that refuses the
connection is skipped, as a real balancer's health check would; a backend that dies while it holds
a request makes that request fail with 502, as it does behind a real one (a POST is not replayed)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

# Hop-by-hop and framing headers are the balancer's own business; everything else goes through.
_NOT_FORWARDED = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass
class Routed:
    """One request as the balancer handled it: the backend that answered (None: none did)."""

    backend: int | None
    status: int
    retry_num: str | None


@dataclass
class LoadBalancer:
    backends: list[str]  # base URLs, e.g. http://127.0.0.1:3001
    # A test's own routing: request headers -> backend index (None: the usual order).
    policy: Callable[[Mapping[str, str]], int | None] | None = None
    routed: list[Routed] = field(default_factory=list)
    _next: int = 0
    _forced: deque[int] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def send_next_to(self, *backends: int) -> None:
        """The next requests go to these backends, in order (if they are up), then round-robin."""
        self._forced.extend(backends)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(trust_env=False, auto_decompress=False)
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_post("/slack/events", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _order(self, headers: Mapping[str, str]) -> list[int]:
        first = self.policy(headers) if self.policy is not None else None
        if first is None:
            first = self._forced.popleft() if self._forced else self._take_round_robin()
        return [(first + i) % len(self.backends) for i in range(len(self.backends))]

    def _take_round_robin(self) -> int:
        first, self._next = self._next, (self._next + 1) % len(self.backends)
        return first

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        retry_num = request.headers.get("X-Slack-Retry-Num")
        for index in self._order(request.headers):
            try:
                response = await self._post(self.backends[index], request.path_qs, body, headers)
            except aiohttp.ClientConnectorError:
                continue  # down: try the next backend
            except (TimeoutError, aiohttp.ClientError):
                break  # it took the request and died, or hung: the caller sees a gateway error
            self.routed.append(Routed(index, response.status, retry_num))
            return response
        self.routed.append(Routed(None, 502, retry_num))
        return web.Response(status=502, text="bad gateway")

    async def _post(self, base: str, path: str, body: bytes, headers: dict[str, str]) -> web.Response:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=30)
        async with self._session.post(base + path, data=body, headers=headers, timeout=timeout) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _NOT_FORWARDED}
            return web.Response(status=answer.status, body=payload, headers=kept)
