"""Bad configuration stops `python -m bot` with one line naming the variable; tokens never reach logs."""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bot import logs

REPO = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = (
    "SLACK_", "DATABASE_URL", "HOST", "PORT", "TIMEZONE", "REMINDER_", "LOG_LEVEL",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
)  # fmt: skip
BOT_TOKEN = "xoxb-1234-5678-SeCrEtToKeN"
EXIT_CONFIG = 2


def clean_env(**values: str) -> dict[str, str]:
    """The test's environment without any setting the bot reads (names are case-insensitive)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(SETTINGS)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(values)
    return env


def run_bot(cwd: pathlib.Path, *args: str, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=clean_env(**values),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_naming(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == EXIT_CONFIG, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def test_nothing_set_names_the_bot_token(tmp_path: pathlib.Path) -> None:
    line = assert_one_line_naming(run_bot(tmp_path), "SLACK_BOT_TOKEN")
    assert "xoxb-" in line  # says how to fix it
    assert not (tmp_path / "incident-bot.db").exists(), "nothing is created before the config is good"


def test_malformed_bot_token_names_the_prefix_and_hides_the_value(tmp_path: pathlib.Path) -> None:
    assert_one_line_naming(run_bot(tmp_path, SLACK_BOT_TOKEN="bad"), "SLACK_BOT_TOKEN", "xoxb-")
    line = assert_one_line_naming(
        run_bot(tmp_path, SLACK_BOT_TOKEN="xoxp-user-token-not-for-bots"), "SLACK_BOT_TOKEN", "xoxb-"
    )
    assert "not-for-bots" not in line


def test_http_mode_without_signing_secret_names_it(tmp_path: pathlib.Path) -> None:
    line = assert_one_line_naming(run_bot(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN), "SLACK_SIGNING_SECRET")
    assert "SLACK_APP_TOKEN" in line  # the other way out: Socket Mode


def test_empty_signing_secret_counts_as_missing(tmp_path: pathlib.Path) -> None:
    result = run_bot(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET="", SLACK_APP_TOKEN="")
    assert_one_line_naming(result, "SLACK_SIGNING_SECRET")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIMEZONE", "Mars/Olympus"),
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("SLACK_APP_TOKEN", "xoxb-wrong-kind"),
        ("SLACK_API_URL", "slack.com/api"),
        ("DATABASE_URL", "mysql://db"),
        ("REMINDER_SWEEP_SECONDS", "0"),
        ("REMINDER_NOT_BEFORE", "9am"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_setting_is_named(tmp_path: pathlib.Path, name: str, value: str) -> None:
    result = run_bot(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET="secret", **{name: value})
    assert_one_line_naming(result, name)


def test_settings_in_dot_env_are_checked_too(tmp_path: pathlib.Path) -> None:
    (tmp_path / ".env").write_text(f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_SIGNING_SECRET=secret\nTIMEZONE=Mars/Olympus\n")
    assert_one_line_naming(run_bot(tmp_path), "TIMEZONE")


def test_refused_token_at_start_exits_with_one_line_and_no_token_in_debug_logs(tmp_path: pathlib.Path) -> None:
    """Nothing listens on port 9 here: auth.test fails; DEBUG logs from slack-sdk must not show the token."""
    result = run_bot(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="secret",
        SLACK_API_URL="http://127.0.0.1:9/api/",
        LOG_LEVEL="DEBUG",
    )
    assert result.returncode == EXIT_CONFIG, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert "SLACK_BOT_TOKEN" in result.stderr.strip().splitlines()[-1]
    assert "SeCrEtToKeN" not in result.stderr + result.stdout


# ----- redaction -------------------------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def collected() -> Iterator[tuple[logging.Logger, Collect]]:
    handler = Collect()
    handler.addFilter(logs.RedactTokens())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("message", "args"),
    [
        ("calling auth.test with token=%s", (BOT_TOKEN,)),
        ("headers: %s", ({"Authorization": f"Bearer {BOT_TOKEN}"},)),
        ("%(token)s in a mapping", {"token": BOT_TOKEN}),
        (f"token in the message itself: {BOT_TOKEN}", ()),
        ("app token %s and user token %s", ("xapp-1-A0LOCAL-99-abcdef", "xoxp-42-secretuser")),
    ],
    ids=["positional-arg", "dict-arg", "mapping-args", "in-message", "other-kinds"],
)
def test_tokens_are_redacted_from_log_lines(
    collected: tuple[logging.Logger, Collect], message: str, args: object
) -> None:
    logger, handler = collected
    logger.debug(message, *args) if isinstance(args, tuple) else logger.debug(message, args)
    [line] = handler.lines
    for secret in ("SeCrEtToKeN", "abcdef", "secretuser"):
        assert secret not in line, line
    assert "[redacted]" in line


def test_redaction_keeps_the_rest_of_the_line(collected: tuple[logging.Logger, Collect]) -> None:
    logger, handler = collected
    logger.info("posted %s messages to %s with %s", 3, "C0ABC", BOT_TOKEN)
    assert handler.lines == ["INFO tests.redaction: posted 3 messages to C0ABC with xoxb-[redacted]"]


def test_line_without_token_is_untouched(collected: tuple[logging.Logger, Collect]) -> None:
    logger, handler = collected
    logger.info("xoxb is a prefix; %d%% done", 50)
    assert handler.lines == ["INFO tests.redaction: xoxb is a prefix; 50% done"]


def test_configured_logging_redacts_tokens_from_any_logger(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.configure("DEBUG")
        logging.getLogger("slack_sdk.web.async_base_client").debug("Sending a request - token: %s", BOT_TOKEN)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "Sending a request" in err and "SeCrEtToKeN" not in err
