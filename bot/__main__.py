"""Composition root and command line: `incident-bot` (serve), `export INC-<n>`, `report`, `import`,
`demo`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import date

from bot import logs
from bot.config import ConfigError, Settings, load_settings
from bot.runtime import Runtime, StartupError
from storage.database import DatabaseUnavailable

EXIT_CONFIG = 2
log = logging.getLogger("incident-bot")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incident-bot", description="Run incidents in Slack.")
    parser.set_defaults(run=_serve)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the bot (the default)").set_defaults(run=_serve)
    export = sub.add_parser("export", help="print an incident's postmortem Markdown")
    export.add_argument("incident", help="INC-<n>")
    export.set_defaults(run=_export)
    report = sub.add_parser("report", help="incidents across a period: durations by severity and month")
    report.add_argument("--since", help="first day, YYYY-MM-DD (in TIMEZONE)")
    report.add_argument("--until", help="last day, YYYY-MM-DD (included)")
    report.add_argument("--format", default="markdown", help="markdown (default), csv or json")
    report.set_defaults(run=_report)
    imported = sub.add_parser("import", help="make an incident of one channel of a Slack export")
    imported.add_argument("export", help="a Slack workspace export: the .zip or its unpacked folder")
    imported.add_argument("--channel", required=True, help="the channel's name")
    imported.add_argument("--from", dest="since", help="first day, YYYY-MM-DD")
    imported.add_argument("--to", dest="until", help="last day, YYYY-MM-DD (included)")
    imported.add_argument("--close", help="a YAML or JSON file with the close form's answers")
    imported.add_argument("--title", help="the incident's title (default: the channel's purpose or name)")
    imported.add_argument("--severity", default="sev2", help="sev1..sev4 (default sev2)")
    imported.set_defaults(run=_import)
    demo = sub.add_parser("demo", help="play a whole incident offline against the built-in local Slack")
    demo.add_argument("--script", help="a YAML or JSON incident script (default: the built-in one)")
    demo.add_argument("--database-url", help="keep the demo's data here instead of a temporary SQLite file")
    demo.set_defaults(run=_demo)
    return parser


def _fail(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"incident-bot: {message}", file=sys.stderr)
    return code


def _serve(_: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        return _fail(str(exc))
    logs.configure(settings.log_level)
    try:
        asyncio.run(_serve_until_signalled(settings))
    except (StartupError, DatabaseUnavailable) as exc:
        return _fail(str(exc))
    return 0


async def _serve_until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime = Runtime(settings)
    await runtime.start()
    log.info("incident-bot is running (%s mode)", "Socket" if settings.socket_mode else "HTTP")
    await stop.wait()
    log.info("shutting down: finishing work in flight")
    await runtime.stop()


def _export(args: argparse.Namespace) -> int:
    from bot.export import export_markdown, parse_ref

    number = parse_ref(args.incident)
    if number is None:
        return _fail(f"'{args.incident}' is not an incident reference; use INC-<number>, e.g. INC-3", 2)
    try:
        settings = load_settings(**_export_defaults())
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        result = asyncio.run(export_markdown(settings, number))
    except DatabaseUnavailable as exc:
        return _fail(str(exc), 1)
    if isinstance(result, str) and result.startswith("error: "):
        return _fail(result.removeprefix("error: "), 1)
    sys.stdout.write(result)
    return 0


def _report(args: argparse.Namespace) -> int:
    from bot.report import build_report
    from bot.ui.report import FORMATS

    try:
        since, until = _period(args.since, args.until, "--since", "--until")
    except ValueError as exc:
        return _fail(str(exc), 2)
    if args.format not in FORMATS:
        return _fail(f"--format {args.format!r} is not one of {', '.join(FORMATS)}", 2)
    try:
        settings = load_settings(**_export_defaults())
        result = asyncio.run(build_report(settings, since, until, args.format))
    except ConfigError as exc:
        return _fail(str(exc))
    except DatabaseUnavailable as exc:
        return _fail(str(exc), 1)
    if result.startswith("error: "):
        return _fail(result.removeprefix("error: "), 2)
    sys.stdout.write(result)
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.domain.models import Severity
    from bot.importer import ImportProblem, import_channel

    try:
        since, until = _period(args.since, args.until, "--from", "--to")
    except ValueError as exc:
        return _fail(str(exc), 2)
    if args.severity.lower() not in {s.value for s in Severity}:
        return _fail(f"--severity {args.severity!r} is not one of sev1, sev2, sev3, sev4", 2)
    severity = Severity(args.severity.lower())
    try:
        settings = load_settings(**_export_defaults())
        close_file = Path(args.close) if args.close else None
        work = import_channel(settings, Path(args.export), args.channel, since, until, close_file, args.title, severity)
        ref, new = asyncio.run(work)
    except ConfigError as exc:
        return _fail(str(exc))
    except ImportProblem as exc:
        return _fail(str(exc), 2)
    except DatabaseUnavailable as exc:
        return _fail(str(exc), 1)
    print(ref)
    if not new:
        print(f"incident-bot: #{args.channel} was imported before as {ref}; nothing changed", file=sys.stderr)
    return 0


def _period(
    first: str | None, last: str | None, first_option: str, last_option: str
) -> tuple[date | None, date | None]:
    """Both days of a period from the command line; ValueError with the line to print."""
    since, until = _day(first, first_option), _day(last, last_option)
    if since and until and until < since:
        raise ValueError(f"{last_option} {until} is before {first_option} {since}")
    return since, until


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not a date; use YYYY-MM-DD") from None


def _export_defaults() -> dict[str, object]:
    """Export reads only the database: tokens are not needed, so placeholders stand in."""
    import os

    defaults: dict[str, object] = {}
    if not os.environ.get("SLACK_BOT_TOKEN"):
        defaults["SLACK_BOT_TOKEN"] = "xoxb-not-needed-for-export"
    if not os.environ.get("SLACK_SIGNING_SECRET") and not os.environ.get("SLACK_APP_TOKEN"):
        defaults["SLACK_SIGNING_SECRET"] = "not-needed-for-export"
    return defaults


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(args.script, args.database_url)


if __name__ == "__main__":
    sys.exit(main())
