"""compose.yaml, deploy/Caddyfile and .env.example describe the topology the tests run
(issue 13): docker has no daemon here, so the files are checked by parsing them, and the
processes they start are run directly by the e2e tests (two replicas in webhook mode on one
PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
CADDYFILE = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")


def example_keys() -> set[str]:
    return {m.group(1) for m in re.finditer(r"^#?\s*([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE, re.M)}


def test_postgres_keeps_its_data_and_says_when_it_is_ready() -> None:
    pg = COMPOSE["services"]["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert set(COMPOSE["volumes"]) >= {"pgdata", "media"}


def test_two_bot_replicas_in_webhook_mode_wait_for_the_database() -> None:
    bot = COMPOSE["services"]["bot"]
    assert bot["deploy"]["replicas"] == 2
    env = bot["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["WENMING_WEBHOOK_URL"].startswith("https://")
    assert env["WENMING_HTTP_LISTEN"] == "0.0.0.0:8080"
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(bot["healthcheck"]["test"])
    assert bot["stop_grace_period"] == "30s"
    # The secret the webhook demands comes from .env (the bot refuses to start without it).
    assert bot["env_file"] == ".env" and "WENMING_WEBHOOK_SECRET" in example_keys()


def test_the_proxy_publishes_only_the_webhook_and_spreads_it_over_ready_replicas() -> None:
    proxy = COMPOSE["services"]["proxy"]
    assert "443:443" in proxy["ports"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "handle {$WENMING_WEBHOOK_PATH}" in CADDYFILE
    assert "reverse_proxy bot:8080" in CADDYFILE and "health_uri /readyz" in CADDYFILE
    assert "respond 404" in CADDYFILE  # /metrics and /readyz stay inside


def test_every_variable_the_files_need_is_in_env_example_and_read_by_the_bot() -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required <= example_keys(), required - example_keys()
    read = set(re.findall(r'"((?:WENMING|TELEGRAM)_[A-Z_]+)"',
                          (ROOT / "bot" / "config.py").read_text(encoding="utf-8")))
    bot_settings = {k for k in example_keys() if k.startswith(("WENMING_", "TELEGRAM_"))}
    # WENMING_DOMAIN and WENMING_WEBHOOK_PATH are compose's, folded into WENMING_WEBHOOK_URL.
    assert bot_settings - {"WENMING_DOMAIN", "WENMING_WEBHOOK_PATH"} <= read, (
        bot_settings - read)
    Settings.from_env({})  # the defaults the image starts from are valid
