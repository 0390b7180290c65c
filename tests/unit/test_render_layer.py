"""bot/render/ is presentation only: it imports neither Telegram nor the database nor the use
cases (the import contracts say so too; this names the offending line)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.render.buttons import Button, keyboard_json, rows
from bot.telegram.markup import inline_markup

RENDER = Path(__file__).resolve().parents[2] / "bot" / "render"
FORBIDDEN = ("telegram", "db", "sqlalchemy", "bot.services", "bot.telegram", "bot.media",
             "handlers", "scheduler")


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("path", sorted(RENDER.glob("*.py")), ids=lambda p: p.name)
def test_render_imports_no_telegram_database_or_services(path: Path) -> None:
    bad = [f"{path.name}:{line} imports {name}" for line, name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad


def test_rows_become_the_same_keyboard_for_telegram_and_for_the_outbox() -> None:
    buttons = [*rows([("A", "t:1:1:a"), ("B", "t:1:1:x")]), [Button("Open", url="https://t.me/x")]]
    markup = inline_markup(buttons)
    assert markup is not None
    assert markup.to_dict() == keyboard_json(buttons)
    assert inline_markup([]) is None and keyboard_json([]) is None
    with pytest.raises(ValueError):
        Button("neither")
