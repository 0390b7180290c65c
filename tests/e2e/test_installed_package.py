"""Issue 11 item 14: the package as the Dockerfile installs it starts and answers.

`pip install .` once left out the city configuration and the demo city, so `wenming run` from
any other folder failed (`…/site-packages/config/reporting.yaml: cannot read`) and `wenming
sandbox` could not find its demo city. This builds the wheel from a copy of the checkout,
installs it into a fresh virtual environment (pip resolves from the machine's configured
indexes), and runs the installed `wenming` from a folder outside the checkout: `wenming run`
against the sandbox until it answers /start, and `wenming sandbox` until it serves its web
chat with the demo city seeded. It takes about a minute.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.config import sqlite_url
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from tests.conftest import ROOT, TEST_TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.package]

# What a clean clone holds besides the sources (build output, caches, local data are left out).
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "var", "build", "dist", "*.egg-info",
                                     "__pycache__", ".*_cache", "*.db", ".env")


def _run(cmd: list[str], **kwargs: object) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `wenming` script of a fresh virtual environment holding only the built wheel."""
    base = tmp_path_factory.mktemp("package")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"),
          str(src)], cwd=base)
    wheel = next((base / "dist").glob("wenming-*.whl"))
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=base)
    shutil.rmtree(src)  # nothing of the checkout is left to lean on
    yield venv / "bin" / "wenming"


def _outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working folder outside the checkout, and an environment that does not reach it."""
    here = tmp_path / "elsewhere"
    here.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith(("WENMING_",
                                                                          "TELEGRAM_"))}
    env.pop("DATABASE_URL", None)
    env["WENMING_HTTP_LISTEN"] = "127.0.0.1:0"  # another run here may hold the default 8080
    return here, env


def test_installed_package_runs_from_its_own_files(installed: Path, tmp_path: Path) -> None:
    here, env = _outside(tmp_path)
    python = installed.parent / "python"
    where = _run([str(python), "-c", "import bot; print(bot.__file__)"], cwd=here, env=env)
    assert Path(where.strip()).is_relative_to(installed.parent.parent), where
    assert not ROOT.joinpath("bot").samefile(Path(where.strip()).parent)
    site = Path(where.strip()).parent.parent
    assert not (site / "config").exists() and not (site / "examples").exists()
    assert "schedule OK" in _run([str(installed), "bulletin", "--check-config"], cwd=here,
                                 env=env)
    # A city's own directory overrides the shipped file (here, with a mistake in it).
    own = here / "my-city"
    own.mkdir()
    (own / "schedule.yaml").write_text("schema: 1\ntick_seconds: -1\n", encoding="utf-8")
    done = subprocess.run([str(installed), "bulletin", "--check-config"], cwd=here,
                          env={**env, "WENMING_CONFIG_DIR": str(own)}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode != 0 and str(own / "schedule.yaml") in done.stderr, done.stderr


async def test_installed_wenming_run_answers_start(installed: Path, tmp_path: Path) -> None:
    here, env = _outside(tmp_path)
    server = SandboxServer(flood_control=False)
    await server.start()
    log = (tmp_path / "bot.log").open("wb")
    bot = await asyncio.create_subprocess_exec(
        str(installed), "run", cwd=here, stdout=log, stderr=subprocess.STDOUT,
        env={**env, "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
             "TELEGRAM_API_BASE_URL": server.api_base_url,
             "TELEGRAM_FILE_BASE_URL": server.file_base_url,
             "DATABASE_URL": sqlite_url(here / "wenming.db"), "WENMING_POLL_TIMEOUT": "1"},
    )
    try:
        async with SandboxClient(server.url) as sb:
            user = await sb.create_user("新人")
            sent = await sb.send_text(user["id"], "/start")
            try:
                reply = await sb.wait_for_bot_message(
                    user["id"], after_message_id=sent["message_id"], timeout=60)
            except TimeoutError:
                pytest.fail("the installed bot never answered /start:\n"
                            + (tmp_path / "bot.log").read_text(errors="replace")[-3000:])
            assert reply["text"]
    finally:
        bot.send_signal(signal.SIGTERM)
        await asyncio.wait_for(bot.wait(), 30)
        log.close()
        await server.stop()


async def test_installed_wenming_sandbox_finds_its_demo_city(
    installed: Path, tmp_path: Path
) -> None:
    here, env = _outside(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        str(installed), "sandbox", "--port", "0", cwd=here, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        output: list[str] = []
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 90)).decode()
            if not line:
                break
            output.append(line)
            if "Open the web chat:" in line:
                url = line.split("Open the web chat:")[1].strip().rstrip("/")
        assert url, "wenming sandbox did not start:\n" + "".join(output)
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/") as page:
                assert page.status == 200 and "<html" in (await page.text()).lower()
        async with SandboxClient(url) as sb:
            titles = {c.get("title") for c in await sb.chats()}
        assert "第1网络包抓联络小组工作群" in titles  # seeded from the shipped demo city
        assert (here / "var" / "sandbox" / "sandbox.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
