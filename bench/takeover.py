"""Polling takeover: two bot processes on one PostgreSQL database, the one polling is killed.

    .venv/bin/python -m bench.takeover [--runs 3]

Starts the local sandbox and two `python -m bot.cli run` processes (replicas "a" and "b") on a
throwaway PostgreSQL database (BENCH_PG_URL's server). One holds the polling lock and answers;
the other stands by (db/leader.py). The active one is SIGKILLed and, at that instant, a user
sends /help: the figure is the time from the kill to the standby's answer (the database
noticing the dead session, the standby's next try of the lock (every 1 s), its recovery of
the inbox and its first getUpdates). Each run kills whichever replica polls and starts it
again afterwards, so it stands by for the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, create_database, drop_database
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer

TOKEN = "123456789:TESTtokenForWenmingSandbox"
HOLDS = "now holds the polling role"
STEADY = 3.0


@dataclass
class Replica:
    name: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    log_from: int = 0  # where this process's lines begin in the log

    def start(self, server: SandboxServer, database_url: str, workdir: Path) -> None:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN,
               "TELEGRAM_API_BASE_URL": server.api_base_url,
               "TELEGRAM_FILE_BASE_URL": server.file_base_url, "DATABASE_URL": database_url,
               "WENMING_MEDIA_DIR": str(workdir / "media"), "WENMING_POLL_TIMEOUT": "1",
               "WENMING_REPLICA_NAME": self.name,
               "WENMING_HTTP_LISTEN": "127.0.0.1:0"}  # two replicas on one machine
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def mine(self) -> str:
        """What this process (since its latest start) wrote to the log."""
        with self.log.open("rb") as fh:
            fh.seek(self.log_from)
            return fh.read().decode(errors="replace")

    async def running(self, timeout: float = 60) -> None:
        """Wait until the process has started (polling or standing by)."""
        deadline = time.monotonic() + timeout
        while "Wenming is running" not in self.mine():
            if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                raise RuntimeError(f"replica {self.name} did not start:\n{self.mine()[-2000:]}")
            await asyncio.sleep(0.1)

    def polls(self) -> bool:
        """Whether this process's latest role line says it holds the polling role."""
        lines = [line for line in self.mine().splitlines() if "the polling role" in line]
        return bool(lines) and HOLDS in lines[-1]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


async def answered(sb: SandboxClient, user_id: int, text: str, timeout: float) -> float:
    """Send `text` and return when (monotonic) the bot's reply to it arrived."""
    sent = await sb.send_text(user_id, text)
    await sb.wait_for_bot_message(user_id, after_message_id=sent["message_id"],
                                  timeout=timeout)
    return time.monotonic()


async def takeover_once(server: SandboxServer, sb: SandboxClient, replicas: list[Replica],
                        database_url: str, workdir: Path, user_id: int) -> tuple[str, float]:
    """Kill the replica that polls; seconds until the other answers. Returns (killed, s)."""
    await answered(sb, user_id, "/help", timeout=60)  # someone polls
    # Let the other settle as a standby (a few failed tries of the lock), and kill at a random
    # point of its 1 s retry cycle: with a fixed delay every run would land at the same phase.
    await asyncio.sleep(STEADY + random.uniform(0, 1))
    active = [r for r in replicas if r.polls()]
    assert len(active) == 1, f"expected one polling replica, found {[r.name for r in active]}"
    killed = active[0]
    killed.kill()
    started = time.monotonic()
    done = await answered(sb, user_id, "/help", timeout=60)
    killed.start(server, database_url, workdir)  # back, as a standby for the next kill
    await killed.running()
    return killed.name, done - started


async def run(runs: int, keep: Path | None = None) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = keep or Path(tmp)
        database_url = await create_database("postgresql", workdir)
        server = SandboxServer(flood_control=False)
        await server.start()
        sb = SandboxClient(server.url)
        replicas = [Replica(name, workdir / name / "bot.log") for name in ("a", "b")]
        try:
            user = await sb.create_user("接管测试", user_id=880001)
            for replica in replicas:
                replica.start(server, database_url, workdir)
            for replica in replicas:
                await replica.running()
            figures = []
            for _ in range(runs):
                name, seconds = await takeover_once(server, sb, replicas, database_url,
                                                    workdir, user["id"])
                print(f"killed {name}: the standby answered {seconds:.2f} s after the kill",
                      flush=True)
                figures.append(seconds)
            return figures
        except BaseException:
            for replica in replicas:  # what the replicas said, for the failure's cause
                print(f"--- {replica.name}'s log (last lines)", file=sys.stderr)
                print("\n".join(replica.log.read_text(errors="replace").splitlines()[-25:]),
                      file=sys.stderr)
            raise
        finally:
            for replica in replicas:
                replica.stop()
            await sb.close()
            await server.stop()
            await drop_database(database_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the replicas' logs here (default: a temporary directory)")
    args = parser.parse_args()
    figures = asyncio.run(run(args.runs, args.workdir))
    print(f"takeover: median {statistics.median(figures):.2f} s, max {max(figures):.2f} s "
          f"over {len(figures)} kills")


if __name__ == "__main__":
    main()
