"""Texts of the spot checks' seeds told to the campaign office's group: the hash announced
the day before, the seed revealed after the day with the sites drawn (the day is over, so
nothing in it is unannounced any more). Plain data in, html out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.render.fit import TEXT_LIMIT, shown_length
from bot.render.i18n import local_name, t

RECHECK = "recheck"


@dataclass(frozen=True)
class DrawnSite:
    kind: str  # spot | recheck
    name: str
    name_en: str
    task_id: int | None  # the closed task a re-check is for


def commit_text(lang: str, day: dt.date, seed_hash: str, reveal_at: dt.datetime) -> str:
    """The day's hash, told before the day; `reveal_at` (local): when the seed will be told
    (the next run of the job after the day, i.e. the day after at the announce time)."""
    return t(lang, "draw.commit", day=day.isoformat(), hash=seed_hash,
             reveal=reveal_at.strftime("%Y-%m-%d %H:%M"))


def reveal_text(lang: str, day: str, seed: str, seed_hash: str,
                announced_at: dt.datetime | None, snapshot_hash: str | None,
                sites: Sequence[DrawnSite] | None, limit: int = TEXT_LIMIT) -> str:
    """The seed revealed. `announced_at` (local) is when the hash was told BEFORE the day, or
    None when it was not (told late or never): then the text says the draw cannot be proven
    fixed in advance. `sites` None: no draw was made that day. The sites drawn are listed as
    far as the message's limit allows, then "and N more"."""
    lines = [t(lang, "draw.reveal", day=day, seed=seed)]
    if announced_at is not None:
        lines.append(t(lang, "draw.hash_announced", hash=seed_hash,
                       when=announced_at.strftime("%Y-%m-%d %H:%M")))
    else:
        lines.append(t(lang, "draw.hash_not_announced", hash=seed_hash))
    if sites is None:
        lines.append(t(lang, "draw.undrawn"))
        return "\n".join(lines)
    lines.append(t(lang, "draw.snapshot", snapshot=snapshot_hash or ""))
    lines.append(t(lang, "draw.sites", count=len(sites)))
    budget = limit - 100  # room for the "and N more" line
    for i, s in enumerate(sites):
        name = local_name(lang, s.name, s.name_en)
        line = (t(lang, "draw.site_recheck", name=name, task=s.task_id)
                if s.kind == RECHECK else t(lang, "draw.site_spot", name=name))
        if shown_length("\n".join([*lines, line])) > budget:
            lines.append(t(lang, "draw.more", more=len(sites) - i, day=day))
            break
        lines.append(line)
    return "\n".join(lines)
