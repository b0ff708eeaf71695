"""`incident-bot demo`, run exactly as a newcomer would: a subprocess in an empty directory with a
garbage `.env`, no Slack tokens and no network. Asserts on what it printed and what it wrote."""

from __future__ import annotations

import os
import pathlib
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

BUILT_IN = pathlib.Path(__file__).resolve().parents[2] / "bot" / "demo_incident.yaml"
GARBAGE_ENV = "SLACK_BOT_TOKEN=not-a-token\nSLACK_SIGNING_SECRET=\nTIMEZONE=Mars/Olympus\nPORT=eighty\nDATABASE_URL=x\n"
# Every Markdown escape the postmortem renderer may add in front of punctuation.
MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")

NEW_YORK_SCRIPT = """
title: Search results are stale
timezone: America/New_York
date: 2026-11-02
declared_by: erin
people: {erin: Erin Ellis, frank: Frank Fox, gus: Gus Green}
messages:
  - {time: "23:50", author: pagerduty, bot: true, text: "Search indexer lag above 15 minutes"}
  - {time: "23:55", author: frank, text: "Indexer queue holds 2M pending jobs", key: true}
  - {time: "23:58", author: gus, text: "A backfill started at 23:30", thread: 1}
  - {time: "00:10", author: erin, text: "Scaled indexer workers from 4 to 12"}
  - {time: "00:12", author: frank, text: "Lag is droping", edit: "Lag is dropping"}
  - {time: "00:13", author: gus, text: "sorry, wrong channel", delete: true}
  - {time: "00:20", author: erin, command: "commander @frank"}
  - {time: "00:25", author: frank, command: "note 23:31 backfill job started"}
close:
  time: "00:40"
  by: frank
  impact: "Search results were up to 20 minutes stale"
  impact_start: "23:40"
  impact_end: "00:35"
  root_cause: "A backfill job flooded the indexer queue."
  resolution: "Scaled the indexer workers."
  improvements: ["Rate-limit backfills"]
  tasks:
    - {description: "Rate-limit backfill jobs", owner: gus, due: 2026-11-04}
remind: true
"""


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    directory: pathlib.Path

    def postmortem(self) -> str:
        return (self.directory / "INC-1-postmortem.md").read_text(encoding="utf-8")

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.directory / "demo.db") as conn:
            return conn.execute(query).fetchall()


def run_demo(tmp_path: pathlib.Path, *args: str) -> Run:
    cwd = tmp_path / "newcomer"
    cwd.mkdir(exist_ok=True)
    (cwd / ".env").write_text(GARBAGE_ENV, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLACK_")}
    # The demo must ignore the environment too, not only `.env`.
    env.update({"TIMEZONE": "Nowhere/Garbage", "REMINDER_NOT_BEFORE": "23:59", "HTTPS_PROXY": "http://127.0.0.1:9"})
    database = tmp_path / "data" / "demo.db"
    command = [sys.executable, "-m", "bot", "demo", "--database-url", f"sqlite+aiosqlite:///{database}", *args]
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started, database.parent)


def timeline(markdown: str) -> list[str]:
    section = markdown.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    return [MARKDOWN_ESCAPE.sub(r"\1", line) for line in section.splitlines() if line.strip().startswith("- ")]


def line_with(lines: list[str], text: str) -> str:
    found = [line for line in lines if text in line]
    assert len(found) == 1, f"{text!r} is in {len(found)} timeline lines:\n" + "\n".join(lines)
    return found[0]


def assert_plays_script(run: Run, script: dict[str, Any]) -> None:
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.strip() == "", run.stderr
    markdown = run.postmortem()
    assert markdown in run.stdout  # the postmortem is printed as well as written
    lines = timeline(markdown)
    for message in script["messages"]:
        if "text" in message:
            assert_message_in_timeline(markdown, lines, message)
    assert f"Postmortem: {run.directory / 'INC-1-postmortem.md'}" in run.stdout
    assert f"Database:   {run.directory / 'demo.db'}" in run.stdout


def assert_message_in_timeline(markdown: str, lines: list[str], message: dict[str, Any]) -> None:
    if message.get("delete"):
        assert message["text"] not in MARKDOWN_ESCAPE.sub(r"\1", markdown)
        return
    shown = message.get("edit", message["text"])
    if "edit" in message:
        assert message["text"] not in markdown, "the typo before the edit is gone"
    line = line_with(lines, shown)
    assert f"{message['time']}**" in line, line  # at its scripted time, in the script's time zone
    assert ("📌 **Key event:**" in line) == bool(message.get("key")), line
    assert line.startswith("  - ") == ("thread" in message), line


def reminder_lines(run: Run, owner: str) -> list[str]:
    return [line for line in run.stdout.splitlines() if line.startswith(f"[DM {owner} ") and "⏰" in line]


def test_builtin_demo_plays_the_whole_incident(tmp_path: pathlib.Path) -> None:
    run = run_demo(tmp_path)
    print(f"\nincident-bot demo (built-in script): {run.seconds:.2f} s wall time")
    script = yaml.safe_load(BUILT_IN.read_text(encoding="utf-8"))
    assert_plays_script(run, script)
    assert run.seconds < 30

    first_task = script["close"]["tasks"][0]
    assert len(reminder_lines(run, first_task["owner"])) == 1
    assert run.rows("SELECT state FROM reminders") == [("sent",)]
    assert run.rows(f"SELECT status FROM tasks WHERE description = '{first_task['description']}'") == [("done",)]
    assert run.rows("SELECT state, severity, status FROM incidents") == [("closed", "sev1", "closed")]
    assert "🤖 incident-bot (only visible to alice)" in run.stdout
    assert "✏️ edited carol" in run.stdout and "🗑 deleted bob" in run.stdout


def test_a_custom_script_in_new_york_across_midnight(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "night.yaml"
    path.write_text(NEW_YORK_SCRIPT, encoding="utf-8")
    run = run_demo(tmp_path, "--script", str(path))
    script = yaml.safe_load(NEW_YORK_SCRIPT)
    assert_plays_script(run, script)

    lines = timeline(run.postmortem())
    assert "**2026-11-02 23:55**" in line_with(lines, "Indexer queue holds 2M pending jobs")
    assert "**2026-11-03 00:10**" in line_with(lines, "Scaled indexer workers from 4 to 12")
    assert "**2026-11-02 23:31**" in line_with(lines, "backfill job started")  # the backdated note
    assert "handed command to @frank" in line_with(lines, "handed command")
    assert len(reminder_lines(run, "gus")) == 1 and "[DM gus 2026-11-04 09:30]" in reminder_lines(run, "gus")[0]
    assert run.rows("SELECT status FROM tasks") == [("done",)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s.pop("title"), "script title: is missing"),
        (lambda s: s["messages"][3].update(time="25:00"), "script messages[3].time: '25:00' is not a time"),
        (lambda s: s["messages"][2].update(author="zoe"), "script messages[2].author: 'zoe' is not in people"),
        (lambda s: s["close"]["tasks"][0].update(due="2026-11-01"), "script close.tasks[0].due"),
    ],
    ids=["missing-title", "bad-time", "unknown-author", "due-in-the-past"],
)
def test_a_bad_script_gets_one_line_naming_the_field(tmp_path: pathlib.Path, change: Any, field: str) -> None:
    script = yaml.safe_load(NEW_YORK_SCRIPT)
    change(script)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(script), encoding="utf-8")
    run = run_demo(tmp_path, "--script", str(path))
    assert run.code == 2
    assert run.stderr.startswith(f"demo: {field}"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and run.stdout == ""


def test_a_step_the_bot_refuses_is_named(tmp_path: pathlib.Path) -> None:
    script = yaml.safe_load(NEW_YORK_SCRIPT)
    script["messages"][6]["command"] = "commander frank"  # not a mention: the bot answers with usage
    path = tmp_path / "refused.yaml"
    path.write_text(yaml.safe_dump(script), encoding="utf-8")
    run = run_demo(tmp_path, "--script", str(path))
    assert run.code == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert re.match(r"demo: step \d+ \(messages\[6\]: /incident commander frank by erin\) did not happen", lines[0])


def test_a_used_database_is_refused(tmp_path: pathlib.Path) -> None:
    assert run_demo(tmp_path).code == 0
    again = run_demo(tmp_path)
    assert again.code == 2 and "already holds incidents" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_the_format_reference_documents_every_field_and_shows_the_built_in_script() -> None:
    from bot.demo_script import Close, Message, Script, Task

    reference = (BUILT_IN.parents[1] / "docs" / "demo-script.md").read_text(encoding="utf-8")
    assert BUILT_IN.read_text(encoding="utf-8") in reference
    for model in (Script, Message, Close, Task):
        missing = [name for name in model.model_fields if f"`{name}`" not in reference]
        assert not missing, f"{model.__name__} fields missing from docs/demo-script.md: {missing}"


def test_a_json_script_with_markup_an_integration_name_and_a_task_command(tmp_path: pathlib.Path) -> None:
    """A replay as teams write them: JSON, an integration called "PagerDuty", Slack markup in the
    title and text, a thread reply across midnight in Tokyo, a task added during the incident."""
    script = pathlib.Path(__file__).parent / "data" / "tokyo-json-script.json"
    run = run_demo(tmp_path, "--script", str(script))
    assert run.code == 0, run.stderr
    markdown = run.postmortem()
    lines = timeline(markdown)
    assert "**2026-07-01 23:50**" in line_with(lines, "PagerDuty: Triggered: search p99")
    assert line_with(lines, "mia: rollback?").startswith("  - ")  # nested under its parent
    assert "<!channel>" not in markdown and "<!here>" not in markdown
    assert "**Participants:** mia, kenji, PagerDuty, ola" in markdown
    assert "Pin heap settings in the chart — owner: @ola, due 2026-07-10" in markdown
