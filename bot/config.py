"""Settings from the environment: one frozen object, built at start-up, secrets hidden."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.tasks import DEFAULT_RELAPSE_WEEKS, DEFAULT_TIMEZONE

log = logging.getLogger(__name__)
RELAPSE_WEEKS_ENV = "WENMING_RELAPSE_WEEKS"
DEFAULT_DB_PATH = Path("var/wenming.db")
STANDARDS_DIR = Path(__file__).resolve().parent.parent / "standards"
# The city configuration and the demo city as shipped: package data, installed with the bot
# (config/README.md). WENMING_CONFIG_DIR names a directory whose files override them.
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_RETENTION_DAYS = 90
# What a city may keep in WENMING_CONFIG_DIR.
CONFIG_FILES = ("reporting.yaml", "schedule.yaml", "assessment.yaml", "special_actions.yaml",
                "plans.yaml", "draws.yaml")
DEMO_CITY = DEFAULTS_DIR / "demo-city.yaml"
# The demo city's external test scores (国测、省测、市测), imported by the sandbox.
DEMO_SCORES = DEFAULTS_DIR / "demo-scores.csv"


class Secret:
    """A string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SettingsError(ValueError):
    """A setting has a value the bot cannot use; the message names the variable."""


def _ids(raw: str, name: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in raw.replace(";", ",").split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(
            f"{name} must be comma-separated Telegram user ids, got {raw!r}"
        ) from exc


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    return _whole_number(env, name, default, minimum=1)


def _non_negative_int(env: Mapping[str, str], name: str, default: int) -> int:
    return _whole_number(env, name, default, minimum=0)


def _whole_number(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be {'positive' if minimum else 'zero or more'}, "
                            f"got {value}")
    return value


def default_replica_name() -> str:
    """This process among the bot's replicas: the host and the process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@dataclass(frozen=True)
class Settings:
    bot_token: Secret = field(default_factory=lambda: Secret(""))
    api_base_url: str | None = None
    file_base_url: str | None = None
    database_url: Secret = field(default_factory=lambda: Secret(sqlite_url(DEFAULT_DB_PATH)))
    admin_ids: frozenset[int] = frozenset()
    timezone: str = DEFAULT_TIMEZONE
    media_dir: Path = Path("var/media")
    standards_dir: Path = STANDARDS_DIR
    # A city's own reporting.yaml / schedule.yaml; a file it lacks comes from DEFAULTS_DIR.
    config_dir: Path | None = None
    # WENMING_SCHEDULE_FILE: one schedule file, ahead of config_dir (tests, one-off runs).
    schedule_path: Path | None = None
    default_language: str = "zh-hans"
    admin_chat_id: int | None = None
    # WENMING_RELAPSE_WEEKS: how many weeks after a task is closed a new failure of the same
    # inspection item is a relapse (反弹); 0 turns the link off.
    relapse_weeks: int = DEFAULT_RELAPSE_WEEKS
    # WENMING_CJK_FONT: a font for Chinese in images, ahead of the system's (a container
    # without Debian's font paths).
    cjk_font: Path | None = None
    invite_ttl_hours: int = 72
    # Long-poll timeout for getUpdates; Telegram holds the request up to this many seconds.
    poll_timeout: int = 10
    # How many chats are served at once; updates of one chat are always handled in order.
    max_concurrent_chats: int = 64
    # Connections to the Bot API (with httpx, keep it small: httpcore checks every idle
    # connection's socket before each request; see bot/telegram/transport.py).
    http_connections: int = 64
    # "aiohttp" (bot/telegram/transport.py) or "httpx" (python-telegram-bot's default transport).
    http_transport: str = "aiohttp"
    # WENMING_HTTP_LISTEN: where the bot's own HTTP server (health, metrics, the webhook)
    # listens, as (host, port); None ("off") runs none. Port 0 takes a free one (tests).
    http_listen: tuple[str, int] | None = ("127.0.0.1", 0)
    # WENMING_WEBHOOK_URL: the public https URL Telegram posts updates to (its path is the
    # route served on http_listen); set, the bot runs in webhook mode instead of polling.
    webhook_url: str | None = None
    # WENMING_WEBHOOK_SECRET: Telegram sends it in X-Telegram-Bot-Api-Secret-Token; required
    # with a webhook URL, so a stranger who learns the URL cannot post updates.
    webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    # WENMING_WEBHOOK_MAX_CONNECTIONS: how many requests Telegram keeps open at once (1-100).
    webhook_max_connections: int = 40
    # WENMING_RETENTION_DAYS: handled updates, delivered messages and job runs older than this
    # are pruned once a day (db/repositories/retention.py); 0 keeps everything.
    retention_days: int = DEFAULT_RETENTION_DAYS
    # WENMING_REPLICA_NAME: this process among several (logs, the replica_role metric);
    # by default host-pid.
    replica_name: str = field(default_factory=default_replica_name)
    # WENMING_LOG_FORMAT: "text" (for people) or "json" (one object per line, for collectors).
    log_format: str = "text"
    # /readyz: the oldest due outbox message may have waited this long (seconds) ...
    ready_outbox_max_age: int = 300
    # ... and the Bot API must have answered within this many seconds (else it is asked).
    ready_bot_api_max_age: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        tz = env.get("WENMING_TIMEZONE", "").strip() or DEFAULT_TIMEZONE
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"WENMING_TIMEZONE {tz!r} is not a known time zone") from exc
        admin_chat = env.get("WENMING_ADMIN_CHAT_ID", "").strip()
        try:
            admin_chat_id = int(admin_chat) if admin_chat else None
        except ValueError as exc:
            raise SettingsError("WENMING_ADMIN_CHAT_ID must be a chat id") from exc
        config_dir = env.get("WENMING_CONFIG_DIR", "").strip()
        if config_dir and not Path(config_dir).is_dir():
            raise SettingsError(f"WENMING_CONFIG_DIR {config_dir!r} is not a directory")
        schedule = env.get("WENMING_SCHEDULE_FILE", "").strip()
        lang = (env.get("WENMING_DEFAULT_LANGUAGE", "") or "zh-hans").strip().lower()
        if lang not in ("zh-hans", "en"):
            raise SettingsError("WENMING_DEFAULT_LANGUAGE must be zh-hans or en")
        webhook = _webhook(env)
        listen = _listen(env.get("WENMING_HTTP_LISTEN", "").strip() or DEFAULT_LISTEN)
        if webhook[0] and listen is None:
            raise SettingsError("webhook mode (WENMING_WEBHOOK_URL) needs WENMING_HTTP_LISTEN")
        return cls(
            bot_token=Secret(env.get("TELEGRAM_BOT_TOKEN", "").strip()),
            api_base_url=env.get("TELEGRAM_API_BASE_URL", "").strip() or None,
            file_base_url=env.get("TELEGRAM_FILE_BASE_URL", "").strip() or None,
            database_url=Secret(
                env.get("DATABASE_URL", "").strip() or sqlite_url(DEFAULT_DB_PATH)
            ),
            admin_ids=_ids(env.get("WENMING_ADMIN_IDS", ""), "WENMING_ADMIN_IDS"),
            timezone=tz,
            media_dir=Path(env.get("WENMING_MEDIA_DIR", "").strip() or "var/media"),
            standards_dir=Path(env.get("WENMING_STANDARDS_DIR", "").strip() or STANDARDS_DIR),
            config_dir=Path(config_dir) if config_dir else None,
            schedule_path=Path(schedule) if schedule else None,
            default_language=lang,
            admin_chat_id=admin_chat_id,
            relapse_weeks=_relapse_weeks(env),
            cjk_font=Path(font) if (font := env.get("WENMING_CJK_FONT", "").strip()) else None,
            invite_ttl_hours=_positive_int(env, "WENMING_INVITE_TTL_HOURS", 72),
            poll_timeout=_positive_int(env, "WENMING_POLL_TIMEOUT", 10),
            max_concurrent_chats=_positive_int(env, "WENMING_MAX_CONCURRENT_CHATS", 64),
            http_connections=_positive_int(env, "WENMING_HTTP_CONNECTIONS", 64),
            http_transport=_transport(env),
            http_listen=listen,
            webhook_url=webhook[0],
            webhook_secret=webhook[1],
            webhook_max_connections=webhook[2],
            retention_days=_non_negative_int(env, "WENMING_RETENTION_DAYS",
                                             DEFAULT_RETENTION_DAYS),
            replica_name=env.get("WENMING_REPLICA_NAME", "").strip() or default_replica_name(),
            log_format=_log_format(env),
            ready_outbox_max_age=_positive_int(env, "WENMING_READY_OUTBOX_MAX_AGE", 300),
            ready_bot_api_max_age=_positive_int(env, "WENMING_READY_BOT_API_MAX_AGE", 60),
        )

    @property
    def webhook_path(self) -> str | None:
        """The route Telegram posts to: the webhook URL's path (None in polling mode)."""
        return (urlsplit(self.webhook_url).path or "/") if self.webhook_url else None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def config_file(self, name: str) -> Path:
        """The city's own `name` in config_dir if it has one, else the shipped default."""
        if self.config_dir is not None and (self.config_dir / name).is_file():
            return self.config_dir / name
        return DEFAULTS_DIR / name

    @property
    def reporting_file(self) -> Path:
        return self.config_file("reporting.yaml")

    @property
    def schedule_file(self) -> Path:
        return self.schedule_path or self.config_file("schedule.yaml")

    @property
    def assessment_file(self) -> Path:
        """The assessment's weights (国测、省测、市测 beside supervision) and thresholds."""
        return self.config_file("assessment.yaml")

    @property
    def special_actions_file(self) -> Path:
        """The special actions (专项行动): lead, responsible units, categories, dates."""
        return self.config_file("special_actions.yaml")

    @property
    def plans_file(self) -> Path:
        """Supervision plans (bot/domain/plans.py): the morning hour of the daily lists, and
        what `wenming sandbox` imports for the demo city."""
        return self.config_file("plans.yaml")

    @property
    def draws_file(self) -> Path:
        """draws.yaml: the random spot checks (bot/domain/draws_config.py)."""
        return self.config_file("draws.yaml")

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def unused_local_config(self, cwd: Path | None = None) -> list[Path]:
        """City files in ./config of the working directory that are NOT read because
        WENMING_CONFIG_DIR is unset (before the defaults moved into the package, they were)."""
        if self.config_dir is not None:
            return []
        local = (cwd or Path.cwd()) / "config"
        return [local / name for name in CONFIG_FILES if (local / name).is_file()]

    def warn_unused_local_config(self, cwd: Path | None = None) -> None:
        """Say at start-up that an edited ./config/*.yaml is ignored, and how to use it."""
        unused = self.unused_local_config(cwd)
        if unused:
            logging.getLogger(__name__).warning(
                "%s exist(s) but are NOT used: WENMING_CONFIG_DIR is unset, so the shipped "
                "defaults in %s apply. Set WENMING_CONFIG_DIR=config to use them.",
                ", ".join(str(p) for p in unused), DEFAULTS_DIR)


def _relapse_weeks(env: Mapping[str, str]) -> int:
    # A bad value is not fatal (it never was): the default is used, and said.
    raw = env.get(RELAPSE_WEEKS_ENV, "").strip()
    if not raw:
        return DEFAULT_RELAPSE_WEEKS
    try:
        weeks = int(raw)
    except ValueError:
        log.warning("%s=%r is not a number; using %d", RELAPSE_WEEKS_ENV, raw,
                    DEFAULT_RELAPSE_WEEKS)
        return DEFAULT_RELAPSE_WEEKS
    return max(weeks, 0)


def _transport(env: Mapping[str, str]) -> str:
    value = env.get("WENMING_HTTP_TRANSPORT", "").strip().lower() or "aiohttp"
    if value not in ("aiohttp", "httpx"):
        raise SettingsError("WENMING_HTTP_TRANSPORT must be aiohttp or httpx")
    return value


def _log_format(env: Mapping[str, str]) -> str:
    value = env.get("WENMING_LOG_FORMAT", "").strip().lower() or "text"
    if value not in ("text", "json"):
        raise SettingsError("WENMING_LOG_FORMAT must be text or json")
    return value


def _listen(raw: str) -> tuple[str, int] | None:
    """`host:port` (IPv6 as `[::]:8080`), or `off`."""
    if raw.lower() == "off":
        return None
    host, sep, port = raw.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise SettingsError(
            f"WENMING_HTTP_LISTEN {raw!r} must be host:port (e.g. 0.0.0.0:8080) or off")
    return host, int(port)


_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
TELEGRAM_WEBHOOK_PORTS = (443, 80, 88, 8443)


def _webhook(env: Mapping[str, str]) -> tuple[str | None, Secret, int]:
    """Webhook mode's URL, secret and max_connections, checked as setWebhook would."""
    url = env.get("WENMING_WEBHOOK_URL", "").strip()
    secret = env.get("WENMING_WEBHOOK_SECRET", "").strip()
    max_connections = _positive_int(env, "WENMING_WEBHOOK_MAX_CONNECTIONS", 40)
    if not 1 <= max_connections <= 100:
        raise SettingsError(
            f"WENMING_WEBHOOK_MAX_CONNECTIONS must be 1-100, got {max_connections}")
    if not url:
        return None, Secret(""), max_connections
    parts = urlsplit(url)
    # Telegram posts only to https; plain http is allowed for a local Bot API (tests, sandbox).
    local = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not parts.hostname or (parts.scheme != "https" and not local):
        raise SettingsError(
            f"WENMING_WEBHOOK_URL must be a public https URL, got {parts.scheme}://…")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise SettingsError("WENMING_WEBHOOK_URL has a bad port") from exc
    # api.telegram.org posts to these ports only; a self-hosted Bot API server to any.
    official = not env.get("TELEGRAM_API_BASE_URL", "").strip()
    if official and not local and port not in TELEGRAM_WEBHOOK_PORTS:
        raise SettingsError(f"WENMING_WEBHOOK_URL: Telegram posts only to ports "
                            f"{', '.join(map(str, TELEGRAM_WEBHOOK_PORTS))}, not {port}")
    if not secret:
        raise SettingsError(
            "WENMING_WEBHOOK_SECRET is required when WENMING_WEBHOOK_URL is set (webhook "
            "mode): 1-256 characters of A-Z a-z 0-9 _ -")
    if not _SECRET_TOKEN.fullmatch(secret):
        raise SettingsError(
            "WENMING_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ - "
            "(Telegram's rule for secret_token)")
    return url, Secret(secret), max_connections
