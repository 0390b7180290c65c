"""Issue 14 tryout item 15: `bin/run` again (no --fresh) continues the sandbox it stopped.

Telegram's update ids keep growing for a bot's whole life, and the bot ignores an id it has
handled (its inbox). A sandbox that numbered its updates from 1 again after a restart made the
bot ignore everything ("update 1 delivered again; ignored") until the numbers caught up; its
clock went back to real time while the database held data up to the moved clock. Here the real
`wenming sandbox` is started on a data directory, a person says /start, the clock is moved; the
process is stopped (SIGINT) and, at once, started again on the same directory: it waits for the
old one to finish, /start is answered, and the clock is where it was.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.client import SandboxClient
from tests.conftest import ROOT
from tests.e2e.chat import body

pytestmark = pytest.mark.e2e

INSPECTOR = 10001  # 张督查
DAY = 86400


async def start_sandbox(data_dir: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str,
                                                               list[str]]:
    """`wenming sandbox` on data_dir; its web address once it says it is running."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WENMING_", "TELEGRAM_")) and k != "DATABASE_URL"}
    env["WENMING_HTTP_LISTEN"] = "127.0.0.1:0"  # another run here may hold the default 8080
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "sandbox", "--port", "0", "--data-dir", str(data_dir),
        *extra, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    seen: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 180)).decode()
        if not line:
            await proc.wait()
            pytest.fail("wenming sandbox stopped:\n" + "".join(seen))
        seen.append(line)
        if "Open the web chat:" in line:
            return proc, line.split("Open the web chat:")[1].strip().rstrip("/"), seen


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def answered(sb: SandboxClient, command: str, needle: str) -> None:
    """The inspector sends command; the bot's answer to it (not some other message the bot
    sends the inspector meanwhile, such as the morning list) arrives."""
    sent = await sb.send_text(INSPECTOR, command)
    await sb.wait_for_bot_message(INSPECTOR, after_message_id=sent["message_id"], timeout=60,
                                  predicate=lambda m: needle in body(m))


async def drain(stream: asyncio.StreamReader | None) -> None:
    assert stream is not None
    while await stream.readline():
        pass


async def test_a_restarted_sandbox_answers_and_keeps_its_clock(tmp_path: Path) -> None:
    data_dir = tmp_path / "sandbox"
    first, url, _ = await start_sandbox(data_dir, "--fresh")
    second: asyncio.subprocess.Process | None = None
    drains = [asyncio.create_task(drain(first.stdout))]
    try:
        async with SandboxClient(url) as sb:
            await answered(sb, "/start", "您是督查员")
            await answered(sb, "/help", "督查员可用命令")
            moved = await sb.advance_clock(days=2)
            assert moved["offset_seconds"] == 2 * DAY

        # Ctrl-C, then `bin/run` again straight away: the new one waits for the old to finish.
        first.send_signal(signal.SIGINT)
        second, url, said = await start_sandbox(data_dir)
        assert first.returncode is not None or await first.wait() == 0
        assert not any("Traceback" in line or "refusing" in line for line in said), said
        drains.append(asyncio.create_task(drain(second.stdout)))
        async with SandboxClient(url) as sb:
            await answered(sb, "/start", "您是督查员")
            await answered(sb, "/help", "督查员可用命令")
            clock = await sb.clock()
            assert clock["offset_seconds"] == 2 * DAY  # where the first run left it
    finally:
        await stop(first)
        if second is not None:
            await stop(second)
        for task in drains:
            task.cancel()


async def test_a_second_sandbox_on_a_running_ones_directory_is_refused_clearly(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "sandbox"
    first, url, _ = await start_sandbox(data_dir, "--fresh")
    drainer = asyncio.create_task(drain(first.stdout))
    try:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WENMING_", "TELEGRAM_")) and k != "DATABASE_URL"}
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "sandbox", "--port", "0", "--data-dir",
            str(data_dir), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await asyncio.wait_for(second.communicate(), 120)
        said = out.decode()
        assert second.returncode == 2, said
        assert "refusing to start" in said and "another wenming sandbox" in said, said
        assert "Traceback" not in said, said
        async with SandboxClient(url) as sb:  # the first goes on answering
            await answered(sb, "/start", "您是督查员")
    finally:
        await stop(first)
        drainer.cancel()
