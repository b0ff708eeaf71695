"""Settings, read once from the environment and `.env` (DESIGN §1 is the contract)."""

from __future__ import annotations

import re
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.models import Severity

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# How to fix each setting, shown in the one-line error an operator sees.
FIXES: dict[str, str] = {
    "SLACK_BOT_TOKEN": "set it to the app's Bot User OAuth Token (starts with xoxb-), see README",
    "SLACK_SIGNING_SECRET": "set it to the app's Signing Secret (Basic Information page), "
    "or set SLACK_APP_TOKEN for Socket Mode",
    "SLACK_APP_TOKEN": "set it to an App-Level Token with connections:write (starts with xapp-), "
    "or leave it unset for HTTP mode",
    "SLACK_API_URL": "use an http(s) URL ending in /, e.g. https://slack.com/api/",
    "DATABASE_URL": "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db",
    "HOST": "use an interface address such as 0.0.0.0 or 127.0.0.1",
    "PORT": "use a port number between 1 and 65535 (0 picks a free one)",
    "TIMEZONE": "use an IANA time zone name such as UTC or Europe/Berlin",
    "REMINDER_SWEEP_SECONDS": "use a whole number of seconds between 1 and 86400",
    "REMINDER_NOT_BEFORE": "use HH:MM, e.g. 09:00",
    "RECONCILE_SECONDS": "use a whole number of seconds between 1 and 86400",
    "LOG_LEVEL": "use DEBUG, INFO, WARNING or ERROR",
    "UPDATE_CADENCE": "use sevN:minutes pairs separated by commas, e.g. sev1:30,sev2:60 (empty: no nudges)",
    "POSTMORTEM_DUE_DAYS": "use a whole number of days between 1 and 365",
    "DIGEST_CHANNEL": "use a channel id such as C0123ABCD (channel details → About → Channel ID)",
    "ALERT_CHANNEL": "use a channel id such as C0123ABCD (channel details → About → Channel ID)",
}


def parse_cadence(value: str) -> dict[Severity, int]:
    """`sev1:30,sev2:60` -> minutes without a status update before the commander is nudged."""
    cadence: dict[Severity, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        level, _, minutes = part.partition(":")
        try:
            severity, every = Severity(level.strip().lower()), int(minutes)
        except ValueError:
            raise ValueError(f"{part!r} is not sevN:minutes") from None
        if every < 1:
            raise ValueError(f"{part!r}: minutes must be 1 or more")
        cadence[severity] = every
    return cadence


class ConfigError(Exception):
    """A setting is missing or malformed; the message is the one line shown to the operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr = Field(alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    database_url: str = Field(default="sqlite+aiosqlite:///incident-bot.db", alias="DATABASE_URL")
    host: str = Field(default="0.0.0.0", alias="HOST")
    port: int = Field(default=3000, ge=0, le=65535, alias="PORT")  # 0: any free port
    timezone: str = Field(default="UTC", alias="TIMEZONE")
    reminder_sweep_seconds: int = Field(default=60, ge=1, le=86400, alias="REMINDER_SWEEP_SECONDS")
    reminder_not_before: str = Field(default="09:00", alias="REMINDER_NOT_BEFORE")
    reconcile_seconds: int = Field(default=300, ge=1, le=86400, alias="RECONCILE_SECONDS")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    alert_webhook_token: SecretStr | None = Field(default=None, alias="ALERT_WEBHOOK_TOKEN")
    pagerduty_webhook_secret: SecretStr | None = Field(default=None, alias="PAGERDUTY_WEBHOOK_SECRET")
    alert_channel: str | None = Field(default=None, alias="ALERT_CHANNEL")
    digest_channel: str | None = Field(default=None, alias="DIGEST_CHANNEL")
    update_cadence: str = Field(default="sev1:30,sev2:60", alias="UPDATE_CADENCE")
    postmortem_due_days: int = Field(default=2, ge=1, le=365, alias="POSTMORTEM_DUE_DAYS")

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_prefix(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must start with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_prefix(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None  # an empty line in .env means "not set"
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must start with xapp-")
        return value

    @field_validator("update_cadence")
    @classmethod
    def _cadence(cls, value: str) -> str:
        parse_cadence(value)
        return value

    @field_validator("alert_channel", "digest_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"[CG][A-Z0-9]{2,}", value.strip()):
            raise ValueError("must be a channel id")
        return value.strip()

    @field_validator("slack_signing_secret", "alert_webhook_token", "pagerduty_webhook_secret")
    @classmethod
    def _empty_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("unsupported driver")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("reminder_not_before")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("unknown level")
        return value.upper()

    @model_validator(mode="after")
    def _http_mode_needs_signing_secret(self) -> Settings:
        if self.slack_app_token is None and self.slack_signing_secret is None:
            raise ValueError("SLACK_SIGNING_SECRET: required in HTTP mode")
        return self

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def cadence(self) -> dict[Severity, int]:
        return parse_cadence(self.update_cadence)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def not_before(self) -> time:
        hours, minutes = self.reminder_not_before.split(":")
        return time(int(hours), int(minutes))


def load_settings(**overrides: object) -> Settings:
    """Build Settings or raise ConfigError with one line naming the variable and the fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = _variable_name(error)
    missing = error["type"] == "missing" or not error["loc"]
    problem = "is missing" if missing else f"is invalid ({_reason(error)})"
    return f"{name} {problem}: {FIXES.get(name, 'see .env.example')}"


def _variable_name(error: ErrorDetails) -> str:
    if error["loc"]:
        return str(error["loc"][0]).upper()
    message = str(error.get("msg", ""))
    return message.split("Value error, ", 1)[-1].split(":", 1)[0]


def _reason(error: ErrorDetails) -> str:
    return str(error.get("msg", "")).removeprefix("Value error, ")
