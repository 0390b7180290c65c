"""Issue 11 item 9: every command README.md shows works as written from a fresh clone.

The README's `wenming bulletin` example once failed on a fresh clone ("no group -1001001 is
bound": it read the real database while the demo city lives in the sandbox's). This copies the
checkout as a clone would hold it (no .venv, no var/), and runs, in the README's order, every
command it shows: the lines of its ```sh blocks and every inline `code` that starts with
`wenming `, `bin/`, `.venv/bin/` or a VAR=value assignment, with `.venv/bin` on the PATH as the
README says. A command added to the README later is run the same way, so one that does not work
fails here. Three kinds are not run to their end, and are named below: the two that run until
stopped (`bin/run`, `wenming sandbox`) run until they print the web chat's address; `bin/test`
is the suite itself (it must exist and be executable); the benchmarks take minutes each, so
they answer `--help` (their figures are the README's, measured by hand).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

COMMAND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(?:wenming\s|bin/|\.venv/bin/)")
# Placeholders the README uses in otherwise runnable commands, and what stands for them. A
# reader's own organisation file goes into their database; the demo city stands for it here in
# a database of its own, so the real one stays as a fresh clone has it (no group bound).
PLACEHOLDERS = {
    " [FILE]": "",
    "wenming import FILE.yaml":
        "DATABASE_URL=sqlite+aiosqlite:///var/org.db wenming import bot/defaults/demo-city.yaml",
    # The demo city's plans into that database (their units are there: an import into a
    # database without them is refused, naming each unknown unit).
    "wenming plans import":
        "DATABASE_URL=sqlite+aiosqlite:///var/org.db wenming plans import",
    # The demo city's test scores into that database (its units are there).
    "wenming assessment import FILE":
        "DATABASE_URL=sqlite+aiosqlite:///var/org.db wenming assessment import"
        " examples/assessment-scores.xlsx",
    # A backup of that database, to a new file.
    "wenming db backup FILE":
        "DATABASE_URL=sqlite+aiosqlite:///var/org.db wenming db backup var/org-backup.db",
}
SERVES = re.compile(r"^(bin/run|wenming sandbox)\b")
BENCH = re.compile(r"^\.venv/bin/python (-m bench\.|bench/)")
_NOT_IN_A_CLONE = shutil.ignore_patterns(".git", ".venv", "var", "build", "dist", "*.egg-info",
                                         "__pycache__", ".*_cache", "*.db", ".env", "*.png")


def readme_commands(text: str) -> list[str]:
    """The shell commands README.md shows, in order."""
    commands: list[str] = []
    fenced = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
    pos = 0
    for block in fenced.finditer(text):
        commands += _inline(text[pos:block.start()])
        if block.group(1) in ("sh", "bash", "shell", "console"):
            commands += [line.strip() for line in block.group(2).splitlines()
                         if line.strip() and not line.strip().startswith("#")]
        pos = block.end()
    commands += _inline(text[pos:])
    return list(dict.fromkeys(commands))  # each once, where it first appears


def _inline(text: str) -> list[str]:
    spans = (" ".join(m.group(1).split()) for m in re.finditer(r"`([^`\n]+(?:\n[^`\n]+)?)`",
                                                                 text))
    return [span for span in spans if COMMAND.match(span)]


def test_the_readme_command_list_is_what_the_readme_shows() -> None:
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands[:2] == ["bin/run", "bin/test"]
    assert any(c.startswith("DATABASE_URL=") and " wenming bulletin " in c for c in commands)
    assert any(BENCH.match(c) for c in commands)


class _Lines:
    """A process's output, line by line, without blocking past a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self.lines.put(line)
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.seen.append(line)
            if needle in line:
                return True
        return False


def _serve_until_ready(command: str, clone: Path, env: dict[str, str]) -> None:
    # The first bin/run sets up .venv (pip from the configured indexes): minutes at worst.
    proc = subprocess.Popen(["bash", "-c", command], cwd=clone, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    output = _Lines(proc)
    try:
        ready = output.wait_for("Open the web chat:", timeout=420)
        assert ready, f"`{command}` never offered the web chat:\n" + "".join(output.seen)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_every_readme_command_works_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "wenming"
    shutil.copytree(ROOT, clone, ignore=_NOT_IN_A_CLONE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH")
           and not k.startswith(("WENMING_", "TELEGRAM_"))}
    env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # Any free port: another run on this machine may hold the default 8080.
    env["WENMING_HTTP_LISTEN"] = "127.0.0.1:0"
    commands = readme_commands((clone / "README.md").read_text(encoding="utf-8"))
    assert commands, "README.md shows no commands?"
    for shown in commands:
        command = shown
        for placeholder, value in PLACEHOLDERS.items():
            command = command.replace(placeholder, value)
        if command == "bin/test":
            assert os.access(clone / "bin" / "test", os.X_OK), "bin/test is not executable"
            continue
        if SERVES.match(command):
            _serve_until_ready(command, clone, env)
            continue
        if BENCH.match(command):
            command += " --help"
        done = subprocess.run(["bash", "-c", command], cwd=clone, env=env, text=True,
                              capture_output=True, timeout=300, check=False)
        assert done.returncode == 0, (
            f"README command `{shown}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
