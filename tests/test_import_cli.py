"""`incident-bot import`: a channel of a Slack export (folder or .zip) becomes an incident."""

from __future__ import annotations

import json
import pathlib
import zipfile

import pytest

from tests.test_config_cli import run_bot

USERS = [
    {"id": "U01ANA", "name": "ana", "real_name": "Ana Alvarez",
     "profile": {"display_name": "ana.a", "real_name": "Ana Alvarez"}},
    {"id": "U02BEN", "name": "ben", "profile": {"display_name": "", "real_name": "Ben Brook"}},
]  # fmt: skip
CHANNELS = [{"id": "C0INC42", "name": "inc-42-checkout", "purpose": {"value": "Checkout returns 500s"}},
            {"id": "C0GENERAL", "name": "general"}]  # fmt: skip
DAY_1 = [
    {"type": "message", "subtype": "channel_join", "user": "U01ANA", "text": "<@U01ANA> has joined the channel",
     "ts": "1764660000.000100"},
    {"type": "message", "user": "U01ANA", "text": "Checkout is failing for <@U02BEN>'s team", "ts": "1764660060.000200",
     "thread_ts": "1764660060.000200", "reply_count": 1, "reactions": [{"name": "pushpin", "users": ["U02BEN"]}]},
    {"type": "message", "user": "U02BEN", "text": "looking at the LB", "ts": "1764660120.000300",
     "thread_ts": "1764660060.000200", "parent_user_id": "U01ANA"},
    {"type": "message", "subtype": "bot_message", "bot_id": "B0ALERT", "username": "Alertmanager", "text": "",
     "attachments": [{"title": "HighErrorRate firing", "text": "5xx > 5%"}], "ts": "1764660180.000400"},
]  # fmt: skip
DAY_2 = [
    {"type": "message", "user": "U02BEN", "text": "rolled back, graph attached", "ts": "1764746400.000500",
     "files": [{"name": "errors.png", "permalink": "https://example.slack.com/files/U02BEN/F1/errors.png"}]},
    {"type": "message", "subtype": "channel_topic", "user": "U01ANA", "text": "set the topic",
     "ts": "1764746460.000600"},
]  # fmt: skip
CLOSE = """impact: 30% of checkouts failed
impact_start: 2025-12-02T07:20:00Z
impact_end: 2025-12-03T07:30:00Z
root_cause: An unreviewed load balancer change
resolution: Rolled back the change
improvements:
  - Review LB changes
tasks:
  - description: Audit LB configs
    owner: ben
    due: 2099-01-31
"""


def write_export(root: pathlib.Path) -> pathlib.Path:
    folder = root / "export"
    (folder / "inc-42-checkout").mkdir(parents=True)
    (folder / "users.json").write_text(json.dumps(USERS))
    (folder / "channels.json").write_text(json.dumps(CHANNELS))
    (folder / "inc-42-checkout" / "2025-12-02.json").write_text(json.dumps(DAY_1))
    (folder / "inc-42-checkout" / "2025-12-03.json").write_text(json.dumps(DAY_2))
    return folder


def zipped(folder: pathlib.Path) -> pathlib.Path:
    path = folder.parent / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in folder.rglob("*.json"):
            archive.write(file, str(file.relative_to(folder)))
    return path


@pytest.fixture
def setup(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, str]:
    return tmp_path, write_export(tmp_path), f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


def test_an_imported_channel_closes_into_a_postmortem_and_a_repeat_changes_nothing(
    setup: tuple[pathlib.Path, pathlib.Path, str],
) -> None:
    cwd, export, url = setup
    (cwd / "close.yaml").write_text(CLOSE)
    run = run_bot(cwd, "import", str(zipped(export)), "--channel", "inc-42-checkout", "--close", "close.yaml",
                  "--severity", "sev1", DATABASE_URL=url)  # fmt: skip
    assert (run.returncode, run.stdout.strip()) == (0, "INC-1"), run.stderr
    markdown = run_bot(cwd, "export", "INC-1", DATABASE_URL=url).stdout
    assert "Checkout returns 500s" in markdown and "An unreviewed load balancer change" in markdown
    assert "Checkout is failing for @Ben Brook's team" in markdown or "Ben Brook" in markdown
    assert "<@U02BEN>" not in markdown  # mentions read as names, never pings
    assert "looking at the LB" in markdown and "HighErrorRate firing" in markdown and "errors.png" in markdown
    assert "has joined the channel" not in markdown and "set the topic" not in markdown
    assert "📌" in markdown and "Audit LB configs" in markdown and "ana.a" in markdown

    again = run_bot(cwd, "import", str(export), "--channel", "inc-42-checkout", DATABASE_URL=url)
    assert (again.returncode, again.stdout.strip()) == (0, "INC-1") and "nothing changed" in again.stderr
    assert run_bot(cwd, "export", "INC-1", DATABASE_URL=url).stdout == markdown


def test_without_answers_it_is_resolved_awaiting_its_postmortem(setup: tuple[pathlib.Path, pathlib.Path, str]) -> None:
    cwd, export, url = setup
    run = run_bot(cwd, "import", str(export), "--channel", "#inc-42-checkout", "--from", "2025-12-02",
                  "--to", "2025-12-02", "--title", "Checkout 500s", DATABASE_URL=url)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run_bot(cwd, "report", "--format", "json", DATABASE_URL=url).stdout)
    [row] = report["incidents"]
    assert row["title"] == "Checkout 500s" and row["impact_end"] == "2025-12-02T07:23:00Z"
    assert "not closed yet" in run_bot(cwd, "export", "INC-1", DATABASE_URL=url).stderr


@pytest.mark.parametrize(("args", "says"), [
    (["--channel", "nope"], "there is no channel #nope"),
    (["--channel", "inc-42-checkout", "--from", "2025-02-30"], "--from '2025-02-30' is not a date"),
    (["--channel", "inc-42-checkout", "--from", "2025-12-03", "--to", "2025-12-01"], "is before --from"),
    (["--channel", "inc-42-checkout", "--severity", "urgent"], "--severity 'urgent' is not one of"),
    (["--channel", "inc-42-checkout", "--from", "2026-01-01"], "has no messages in the period"),
    (["--channel", "inc-42-checkout", "--close", "missing.yaml"], "cannot read --close"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(setup: tuple[pathlib.Path, pathlib.Path, str], args: list[str],
                                          says: str) -> None:  # fmt: skip
    cwd, export, url = setup
    run = run_bot(cwd, "import", str(export), *args, DATABASE_URL=url)
    assert run.returncode == 2 and says in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_not_an_export(tmp_path: pathlib.Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/b.db"
    run = run_bot(tmp_path, "import", str(tmp_path), "--channel", "x", DATABASE_URL=url)
    assert run.returncode == 2 and "not a Slack workspace export" in run.stderr


def test_a_private_channel_with_an_edit_is_imported_private(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "export"
    (folder / "sec-7").mkdir(parents=True)
    (folder / "users.json").write_text(json.dumps(USERS))
    (folder / "channels.json").write_text(json.dumps([{"id": "C0GENERAL", "name": "general"}]))
    (folder / "groups.json").write_text(json.dumps([{"id": "G0SEC7", "name": "sec-7"}]))
    (folder / "sec-7" / "2025-12-02.json").write_text(json.dumps([
        {"type": "message", "user": "U01ANA", "text": "token leaked, rotating (edited)", "ts": "1764660000.000100",
         "edited": {"user": "U01ANA", "ts": "1764660100.000000"}}]))  # fmt: skip
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    assert run_bot(tmp_path, "import", str(folder), "--channel", "sec-7", DATABASE_URL=url).returncode == 0
    [row] = json.loads(run_bot(tmp_path, "report", "--format", "json", DATABASE_URL=url).stdout)["incidents"]
    assert row["private"] is True


def test_broken_exports_are_refused_before_anything_is_written(setup: tuple[pathlib.Path, pathlib.Path, str]) -> None:
    cwd, export, url = setup
    (export / "inc-42-checkout" / "2025-12-04.json").write_text("{not json")
    run = run_bot(cwd, "import", str(export), "--channel", "inc-42-checkout", DATABASE_URL=url)
    assert run.returncode == 2 and "2025-12-04.json" in run.stderr and "not JSON" in run.stderr
    (export / "inc-42-checkout" / "2025-12-04.json").write_text(json.dumps([{"type": "message", "text": "x"}]))
    run = run_bot(cwd, "import", str(export), "--channel", "inc-42-checkout", DATABASE_URL=url)
    assert run.returncode == 2 and "without ts" in run.stderr
    assert not (cwd / "bot.db").exists()  # nothing was written, not even a database
    evil = cwd / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("channels.json", "[]")
        archive.writestr("../outside.json", "[]")
    run = run_bot(cwd, "import", str(evil), "--channel", "x", DATABASE_URL=url)
    assert run.returncode == 2 and "outside the export" in run.stderr
