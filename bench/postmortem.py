"""A 10,000-entry postmortem: compiled from the database, rendered, uploaded and summarised
against the local Slack (DESIGN §4: no Slack error). Prints the time of each stage."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bot.clock import ManualClock
from bot.config import Settings
from bot.domain.models import CloseForm, Severity, Status
from bot.services import postmortem
from bot.services.context import Context
from bot.slack_api import Slack, make_client
from bot.ui.postmortem import render_markdown
from bot.ui.postmortem_summary import render_summary_blocks
from sandbox import LocalSlack
from storage import Database, Store
from storage.schema import timeline_entries

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def main(count: int) -> None:
    url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='pm-bench-')) / 'pm.db'}"
    clock = ManualClock(START)
    local = LocalSlack(clock=clock.now)
    await local.start()
    for user in ("U0ALICE", "U0BOB", "U0CAROL"):
        local.add_user(user, user[2:].lower())
    channel = local.add_channel("inc-1-bench", members=["U0ALICE"])
    db = Database(url)
    await db.start()
    store = Store(db)
    slack = Slack(make_client(local.bot_token, local.api_url))
    try:
        settings = Settings(_env_file=None, SLACK_BOT_TOKEN=local.bot_token,  # type: ignore[call-arg]
                            SLACK_SIGNING_SECRET="x", SLACK_API_URL=local.api_url, DATABASE_URL=url)
        ctx = Context(settings, store, slack, clock, await slack.identity())
        await store.save_workspace(ctx.team_id, ctx.identity.url, ctx.identity.bot_user_id)
        incident = await store.create_incident(ctx.team_id, {
            "title": "Bench", "severity": Severity.SEV2, "status": Status.INVESTIGATING, "commander_id": "U0ALICE",
            "declared_by": "U0ALICE", "started_at": START, "last_activity_at": START})
        incident = await store.update_incident(incident.id, state="open", channel_id=channel, channel_name="inc-1")
        rows = [{"team_id": ctx.team_id, "incident_id": incident.id, "channel_id": channel,
                 "ts": f"{(START + timedelta(seconds=n)).timestamp():.6f}", "thread_ts": None,
                 "occurred_at": START + timedelta(seconds=n), "kind": "message",
                 "author_id": ("U0ALICE", "U0BOB", "U0CAROL")[n % 3], "author_name": None,
                 "text": f"message {n} " + "words " * (n % 80), "files": "[]", "is_key": n % 50 == 0,
                 "is_broadcast": False, "history": "[]", "recorded_at": START} for n in range(count)]
        async with db.transaction() as conn:
            await conn.execute(insert(timeline_entries), rows)
        end = START + timedelta(seconds=count)
        form = CloseForm(impact="everyone", impact_start=START, impact_end=end, root_cause="bench",
                         resolution="bench", improvements=["a", "b"], submitted_by="U0ALICE", submitted_at=end)
        clock.set(end)
        result = await store.close_incident(incident, form, [])
        assert result is not None
        closed = result[0]

        began = time.perf_counter()
        report = await postmortem.build(ctx, closed)
        built = time.perf_counter()
        markdown = render_markdown(report)
        rendered = time.perf_counter()
        render_summary_blocks(report, None)
        blocks = time.perf_counter()
        await postmortem.publish(ctx, closed)
        published = time.perf_counter()
        errors = [c for c in local.calls if not c.response.get("ok", True)]
        print(f"{count:,} entries: compile {1000 * (built - began):.0f} ms, render Markdown "
              f"{1000 * (rendered - built):.0f} ms ({len(markdown) / 1e6:.1f} MB), summary blocks "
              f"{1000 * (blocks - rendered):.0f} ms, whole publish (compile, render, upload, summary posts) "
              f"{1000 * (published - blocks):.0f} ms; Slack errors: {len(errors)}")
    finally:
        await store.close()
        await db.close()
        if slack.client.session:
            await slack.client.session.close()
        await local.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().entries))
