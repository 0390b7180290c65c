"""What the report use cases return: the draft's view, results (the duplicate candidates' type
is bot.render.reports.Candidate, which the screens show)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.reports import Category
from bot.render.reports import Candidate
from db.models import Report, Site, Unit


@dataclass(frozen=True)
class PhotoAdded:
    report: Report
    photos: int
    new: bool  # False: this Telegram message was handled before (a redelivered update)
    first_of_album: bool  # the first photo of its album in this draft: answer once, later
    dropped: bool = False  # an album photo past the draft's limit: not added, told once


@dataclass
class DraftView:
    report: Report
    photos: int
    category: Category | None
    site: Site | None
    candidates: list[Candidate] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)  # sites matching a typed address
    near: Site | None = None  # for a shared location: the site or area routing finds there
    outside: bool = False  # the shared location is far from every known site: warn


@dataclass(frozen=True)
class Submitted:
    report: Report
    unit: Unit
    new: bool


@dataclass(frozen=True)
class Followed:
    target: Report
    followers: int
    own: bool


@dataclass(frozen=True)
class ReportLine:
    report: Report
    following: bool
