"""draws.yaml: how the day's random spot checks are drawn, and when the seed is told.

Validated on load into a frozen dataclass; a problem names the file, the line and the field,
as schedule.yaml's do (bot/domain/schedule.py). Every key is optional: the defaults below are
the shipped file's values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from pathlib import Path

from yaml.nodes import Node

from bot.domain.draw import DrawParams, RiskWeights
from bot.domain.yamlfile import Fields, YamlFileError, YamlReader, compose, line_of, read_text


class DrawConfigError(YamlFileError, ValueError):
    """A problem in draws.yaml; str() is one line: ``file:line: field: problem``."""


@dataclass(frozen=True)
class DrawConfig:
    per_subdistrict: int = 2  # N: sites drawn per sub-district a day
    recheck_share: float = 0.2  # of the tasks closed within recheck_closed_days
    recheck_closed_days: int = 14
    window_days: int = 30  # "recent" failures, relapses and residents' reports
    report_radius_m: float = 300.0  # a report this close to a site counts for it
    # The local time on day D-1 when the seed of D is committed (its hash told to the
    # campaign office's group) and the seed of D-2 (yesterday, ended) is revealed.
    announce_time: dt.time = dt.time(20, 0)
    weights: RiskWeights = field(default_factory=RiskWeights)

    @property
    def params(self) -> DrawParams:
        return DrawParams(self.per_subdistrict, self.recheck_share)


_TOP = ("schema", "per_subdistrict", "recheck", "window_days", "report_radius_m",
        "announce_time", "weights")
_RECHECK = ("share", "closed_within_days")
_WEIGHTS = tuple(f.name for f in fields(RiskWeights))


def _error(file: str, line: int | None, fld: str | None, problem: str) -> DrawConfigError:
    return DrawConfigError(file, line, fld, problem)


class _Reader(YamlReader[DrawConfigError]):
    def __init__(self, file: str) -> None:
        super().__init__(file, _error, first_only=True)

    def section(self, node: Node, what: str, keys: tuple[str, ...]) -> Fields:
        found = self.fields(node, what, what, keys, named=False)
        assert found is not None
        return found

    def amount(self, m: Fields, key: str, default: float, *, minimum: float = 0,
               maximum: float | None = None, integer: bool = False) -> float:
        if key not in m:
            return default
        value = (self.whole(m[key], key, "the value") if integer
                 else self.number(m[key], key, "the value"))
        assert value is not None
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            self.problem(m.key(key), key, f"must be at least {minimum}{upper}, got {value}")
        return float(value)


def parse_draws(text: str, file: str = "draws.yaml") -> DrawConfig:
    """Validate draws YAML text; raises DrawConfigError naming the line and the field."""
    r = _Reader(file)
    root = compose(text, file, _error)
    d = DrawConfig()
    if root is None:
        return d
    top = r.section(root, "the file", _TOP)
    if "schema" in top and r.whole(top["schema"], "schema", "the value") != 1:
        r.problem(top["schema"], "schema", "must be 1")
    per = int(r.amount(top, "per_subdistrict", d.per_subdistrict, integer=True, maximum=1000))
    share, closed_days = d.recheck_share, d.recheck_closed_days
    if "recheck" in top:
        rc = r.section(top["recheck"], "recheck", _RECHECK)
        share = r.amount(rc, "share", share, maximum=1)
        closed_days = int(r.amount(rc, "closed_within_days", closed_days, minimum=1,
                                   integer=True))
    window = int(r.amount(top, "window_days", d.window_days, minimum=1, integer=True))
    radius = r.amount(top, "report_radius_m", d.report_radius_m)
    announce = d.announce_time
    if "announce_time" in top:
        raw = r.string(top["announce_time"], "announce_time", "the value") or ""
        try:
            hour, minute = raw.strip().split(":")
            announce = dt.time(int(hour), int(minute))
        except ValueError:
            r.problem(top["announce_time"], "announce_time",
                      f"must be a time like \"20:00\", got {raw!r}")
    weights = d.weights
    if "weights" in top:
        w = r.section(top["weights"], "weights", _WEIGHTS)
        values = {k: r.amount(w, k, float(getattr(weights, k)), integer=k == "max_idle_days")
                  for k in _WEIGHTS}
        if values["base"] <= 0:
            r.problem(w.key("base") if "base" in w else line_of(top["weights"]), "base",
                      "must be more than 0 (a site with no risk at all must still be drawable)")
        weights = RiskWeights(**{k: int(v) if k == "max_idle_days" else v
                                 for k, v in values.items()})  # type: ignore[arg-type]
    return DrawConfig(per_subdistrict=per, recheck_share=share, recheck_closed_days=closed_days,
                      window_days=window, report_radius_m=radius, announce_time=announce,
                      weights=weights)


def load_draws(path: Path) -> DrawConfig:
    """draws.yaml from `path` (Settings.draws_file)."""
    return parse_draws(read_text(path, _error), str(path))
