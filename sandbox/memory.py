"""What `wenming sandbox` remembers of its Telegram between runs on one data directory.

Telegram's server, not the bot, owns the update numbering: ids keep growing for a bot's whole
life (after a week without updates the next one is chosen at random, never a recent one again;
/work/shared/notes/telegram-limits.md §1.4). A bot that remembers the updates it handled (its
`inbox` table) ignores an id it has seen. So the sandbox, standing in for that server, keeps
its next update id in its own data directory, beside the bot's database, rather than guessing
it from the bot's database: the real server never reads that either. It keeps its clock's
offset there too: the database holds data up to the moved clock, and a restart that went back
to real time would make the scheduled jobs and deadlines look wrong. `--fresh` forgets both.

The file is rewritten at every new update and clock move (a few dozen bytes, replaced
atomically), so even a killed sandbox continues where it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from sandbox.state import SandboxState

log = logging.getLogger(__name__)
MEMORY_FILE = "sandbox-state.json"


class SandboxMemory:
    def __init__(self, data_dir: Path, state: SandboxState) -> None:
        self.path = data_dir / MEMORY_FILE
        self.state = state

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)

    def restore(self) -> None:
        """Continue the update numbering and the clock where the last run left them."""
        saved = self._read()
        next_id = saved.get("next_update_id")
        if isinstance(next_id, int) and next_id > 0:
            self.state.updates.continue_from(next_id)
        offset = saved.get("clock_offset_seconds")
        if isinstance(offset, (int, float)) and offset > self.state.clock.offset:
            # Set before anyone listens: this is where the clock already was, not a move.
            self.state.clock.offset = float(offset)

    def attach(self) -> None:
        """Write the file at every new update and clock move from now on."""
        self.state.updates.listeners.append(lambda _update: self.save())
        self.state.clock.on_change(self.save)
        self.save()

    def save(self) -> None:
        data = {"next_update_id": self.state.updates.next_id,
                "clock_offset_seconds": self.state.clock.offset}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk must not stop the sandbox delivering updates
            log.warning("could not save the sandbox's state to %s: %s", self.path, exc)

    def _read(self) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError):
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("ignoring the unreadable %s: %s", self.path, exc)
                return {}
            return data if isinstance(data, dict) else {}
        return {}
