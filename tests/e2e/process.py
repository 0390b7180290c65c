"""The bot as production runs it: `wenming run` in its own process, against the sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sandbox.server import SandboxServer
from tests.conftest import ROOT, TEST_TOKEN


def start_bot_process(
    server: SandboxServer, database_url: str, tmp_path: Path, **env_extra: str
) -> subprocess.Popen[bytes]:
    """Start `python -m bot.cli run`; its output goes to tmp_path/bot.log (appended)."""
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_API_BASE_URL": server.api_base_url,
        "TELEGRAM_FILE_BASE_URL": server.file_base_url,
        "DATABASE_URL": database_url,
        "WENMING_MEDIA_DIR": str(tmp_path / "media"),
        "WENMING_POLL_TIMEOUT": "1",
        # A free port for health and metrics: several bots (replicas, other tests) run at once.
        "WENMING_HTTP_LISTEN": "127.0.0.1:0",
        **env_extra,
    }
    log = (tmp_path / "bot.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def stop_bot_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM (a clean stop), SIGKILL if it does not end within `timeout`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
