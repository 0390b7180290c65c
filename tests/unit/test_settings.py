"""Settings from the environment: defaults, the token kept out of sight, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULTS_DIR, Settings, SettingsError


def test_an_empty_environment_gives_the_embedded_defaults() -> None:
    s = Settings.from_env({})
    assert not s.bot_token
    assert s.database_url.reveal().startswith("sqlite+aiosqlite:///")
    assert (s.timezone, s.default_language) == ("Asia/Shanghai", "zh-hans")
    assert (s.max_concurrent_chats, s.http_connections, s.http_transport) == (64, 64, "aiohttp")


def test_the_token_and_database_url_never_show_in_the_settings_repr() -> None:
    s = Settings.from_env({"TELEGRAM_BOT_TOKEN": "123:SECRET-TOKEN",
                           "DATABASE_URL": "postgresql+asyncpg://u:pw-secret@db/wenming"})
    assert s.bot_token.reveal() == "123:SECRET-TOKEN"
    assert "SECRET-TOKEN" not in repr(s) and "pw-secret" not in repr(s)


def test_serving_settings_are_read() -> None:
    s = Settings.from_env({"WENMING_HTTP_TRANSPORT": " HTTPX ", "WENMING_HTTP_CONNECTIONS": "8",
                           "WENMING_MAX_CONCURRENT_CHATS": "16", "WENMING_ADMIN_IDS": "1, 2;3"})
    assert (s.http_transport, s.http_connections, s.max_concurrent_chats) == ("httpx", 8, 16)
    assert s.admin_ids == frozenset({1, 2, 3})


@pytest.mark.parametrize(("name", "value", "says"), [
    ("WENMING_HTTP_TRANSPORT", "curl", "WENMING_HTTP_TRANSPORT must be aiohttp or httpx"),
    ("WENMING_HTTP_CONNECTIONS", "0", "WENMING_HTTP_CONNECTIONS must be positive"),
    ("WENMING_MAX_CONCURRENT_CHATS", "many", "must be a whole number"),
    ("WENMING_TIMEZONE", "Mars/Olympus", "not a known time zone"),
    ("WENMING_ADMIN_IDS", "alice", "comma-separated Telegram user ids"),
    ("WENMING_DEFAULT_LANGUAGE", "fr", "zh-hans or en"),
])
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({name: value})


def test_a_config_directory_overrides_the_shipped_files_one_by_one(tmp_path: Path) -> None:
    """Issue 11 item 14: the city's files come from WENMING_CONFIG_DIR, else the package."""
    shipped = Settings.from_env({})
    assert shipped.reporting_file == DEFAULTS_DIR / "reporting.yaml"
    assert shipped.schedule_file.read_text(encoding="utf-8").startswith("#")
    (tmp_path / "reporting.yaml").write_text("schema: 1\n", encoding="utf-8")
    own = Settings.from_env({"WENMING_CONFIG_DIR": str(tmp_path)})
    assert own.reporting_file == tmp_path / "reporting.yaml"
    assert own.schedule_file == DEFAULTS_DIR / "schedule.yaml"  # not overridden: shipped
    one = Settings.from_env({"WENMING_CONFIG_DIR": str(tmp_path),
                             "WENMING_SCHEDULE_FILE": str(tmp_path / "s.yaml")})
    assert one.schedule_file == tmp_path / "s.yaml"
    with pytest.raises(SettingsError, match="WENMING_CONFIG_DIR"):
        Settings.from_env({"WENMING_CONFIG_DIR": str(tmp_path / "missing")})


def test_the_relapse_window_is_read_and_a_bad_value_falls_back_to_the_default() -> None:
    assert Settings.from_env({}).relapse_weeks == 8
    assert Settings.from_env({"WENMING_RELAPSE_WEEKS": " 12 "}).relapse_weeks == 12
    assert Settings.from_env({"WENMING_RELAPSE_WEEKS": "-1"}).relapse_weeks == 0
    assert Settings.from_env({"WENMING_RELAPSE_WEEKS": "soon"}).relapse_weeks == 8
def test_an_edited_local_config_that_is_not_read_is_named_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11 item 14 (operators): a deployment that edited ./config/reporting.yaml in its
    checkout silently got the shipped defaults after the upgrade. Starting without
    WENMING_CONFIG_DIR now warns, naming the files and the setting; with it set, no warning."""
    from bot.app import build_application

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "reporting.yaml").write_text("schema: 1\n", encoding="utf-8")
    (tmp_path / "config" / "schedule.yaml").write_text("x: 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    env = {"TELEGRAM_BOT_TOKEN": "123:ABC", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.db"}
    with caplog.at_level("WARNING", logger="bot.config"):
        build_application(Settings.from_env(env))
    warned = [r.getMessage() for r in caplog.records if r.name == "bot.config"]
    assert len(warned) == 1
    assert "config/reporting.yaml" in warned[0] and "config/schedule.yaml" in warned[0]
    assert "WENMING_CONFIG_DIR" in warned[0]
    (tmp_path / "elsewhere").mkdir()
    chosen = Settings.from_env({**env, "WENMING_CONFIG_DIR": str(tmp_path / "elsewhere")})
    assert chosen.unused_local_config() == []


def test_webhook_mode_is_read_and_its_secret_kept_out_of_sight() -> None:
    assert Settings.from_env({}).webhook_url is None  # polling by default
    s = Settings.from_env({"WENMING_WEBHOOK_URL": "https://bot.example.org/telegram/k-9",
                           "WENMING_WEBHOOK_SECRET": "Abc_123-xyz",
                           "WENMING_WEBHOOK_MAX_CONNECTIONS": "100"})
    assert (s.webhook_url, s.webhook_path) == ("https://bot.example.org/telegram/k-9",
                                               "/telegram/k-9")
    assert s.webhook_secret.reveal() == "Abc_123-xyz" and s.webhook_max_connections == 100
    assert "Abc_123" not in repr(s)
    assert Settings.from_env({"WENMING_WEBHOOK_URL": "https://bot.example.org",
                              "WENMING_WEBHOOK_SECRET": "s"}).webhook_path == "/"


@pytest.mark.parametrize(("env", "says"), [
    ({"WENMING_WEBHOOK_URL": "https://bot.example.org/t"}, "WENMING_WEBHOOK_SECRET is required"),
    ({"WENMING_WEBHOOK_URL": "https://bot.example.org/t", "WENMING_WEBHOOK_SECRET": "a b"},
     "A-Z a-z 0-9 _ -"),
    ({"WENMING_WEBHOOK_URL": "https://bot.example.org/t", "WENMING_WEBHOOK_SECRET": "é"},
     "A-Z a-z 0-9 _ -"),
    ({"WENMING_WEBHOOK_URL": "https://bot.example.org/t", "WENMING_WEBHOOK_SECRET": "a" * 257},
     "1-256"),
    ({"WENMING_WEBHOOK_URL": "http://bot.example.org/t", "WENMING_WEBHOOK_SECRET": "s"},
     "https"),
    ({"WENMING_WEBHOOK_URL": "bot.example.org/t", "WENMING_WEBHOOK_SECRET": "s"}, "https"),
    ({"WENMING_WEBHOOK_URL": "https://bot.example.org:9000/t", "WENMING_WEBHOOK_SECRET": "s"},
     "ports 443, 80, 88, 8443, not 9000"),
    ({"WENMING_WEBHOOK_URL": "https://bot.example.org:x/t", "WENMING_WEBHOOK_SECRET": "s"},
     "bad port"),
    ({"WENMING_WEBHOOK_MAX_CONNECTIONS": "101"}, "1-100"),
    ({"WENMING_WEBHOOK_MAX_CONNECTIONS": "0"}, "WENMING_WEBHOOK_MAX_CONNECTIONS"),
    ({"WENMING_WEBHOOK_URL": "https://bot.example.org/t", "WENMING_WEBHOOK_SECRET": "s",
      "WENMING_HTTP_LISTEN": "off"}, "needs WENMING_HTTP_LISTEN"),
])
def test_webhook_settings_telegram_would_refuse_stop_the_start(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError, match=says.replace("-", r"\-").replace("(", r"\(")):
        Settings.from_env(env)


def test_a_local_bot_api_may_take_a_plain_http_webhook_and_any_port() -> None:
    s = Settings.from_env({"WENMING_WEBHOOK_URL": "http://127.0.0.1:8443/hook",
                           "WENMING_WEBHOOK_SECRET": "s" * 256})
    assert s.webhook_path == "/hook"
    s = Settings.from_env({"WENMING_WEBHOOK_URL": "https://bot.example.org:9000/t",
                           "WENMING_WEBHOOK_SECRET": "s",
                           "TELEGRAM_API_BASE_URL": "http://botapi.internal:8081/bot"})
    assert s.webhook_url == "https://bot.example.org:9000/t"
    assert Settings.from_env({"WENMING_WEBHOOK_URL": "https://bot.example.org:8443/t",
                              "WENMING_WEBHOOK_SECRET": "s"}).webhook_path == "/t"


def test_the_replica_name_is_read_or_made_of_host_and_process() -> None:
    import os
    import socket

    assert Settings.from_env({"WENMING_REPLICA_NAME": " bot-2 "}).replica_name == "bot-2"
    assert Settings.from_env({}).replica_name == f"{socket.gethostname()}-{os.getpid()}"
