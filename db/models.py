"""The schema. Changed only together with an Alembic migration (a test fails on drift)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import JSON

from db.types import UTCDateTime, utcnow

# Named constraints keep migrations deterministic on both SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict: JSON, list: JSON
    }


class Unit(Base):
    """A responsible unit: district, sub-district, community, department, the campaign office."""

    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)


class Site(Base):
    """A place that is inspected against one standard (its site type)."""

    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    # English, for English readers; "" when the organisation file gives none.
    name_en: Mapped[str] = mapped_column(String(200), default="", server_default="")
    site_type: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    unit: Mapped[Unit] = relationship(lazy="joined")


class Person(Base):
    """Anyone who has talked to the bot; the primary key is the Telegram user id."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_name: Mapped[str] = mapped_column(String(200), default="")
    username: Mapped[str | None] = mapped_column(String(64))
    telegram_language: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(16))  # chosen with /lang
    role: Mapped[str] = mapped_column(String(16), default="resident")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    # What free input (text, location) is awaited outside an inspection step, e.g. a site search.
    pending: Mapped[str | None] = mapped_column(String(64))
    active_inspection_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Assignment(Base):
    """An inspector is assigned to a site (offered first in /inspect)."""

    __tablename__ = "assignments"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)


class PendingAssignment(Base):
    """An assignment named in an import file for someone who has not yet met the bot."""

    __tablename__ = "pending_assignments"
    telegram_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    site_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")


class GroupBinding(Base):
    """A group chat that speaks for a unit: it receives that unit's tasks and bulletins."""

    __tablename__ = "group_bindings"
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    bound_by: Mapped[int | None] = mapped_column(BigInteger)
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invite(Base):
    """A deep-link code that grants a role: expiring, with limited uses."""

    __tablename__ = "invites"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class InviteUse(Base):
    """Who used an invite, so a repeated /start with the same code costs nothing."""

    __tablename__ = "invite_uses"
    code: Mapped[str] = mapped_column(ForeignKey("invites.code"), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class StandardVersion(Base):
    """A snapshot of every standard version an inspection has used, keyed by content hash."""

    __tablename__ = "standard_versions"
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    standard_id: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Inspection(Base):
    """One inspector's checklist run at one site; progress lives here, not in memory."""

    __tablename__ = "inspections"
    __table_args__ = (
        # At most one open inspection per inspector and site.
        Index(
            "uq_inspections_open_per_site",
            "site_id",
            "inspector_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    standard_id: Mapped[str] = mapped_column(String(64))
    standard_hash: Mapped[str] = mapped_column(ForeignKey("standard_versions.content_hash"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    step: Mapped[int] = mapped_column(Integer, default=0)
    # Free input the current step waits for: "photo" (evidence), "remark" (na), "note".
    awaiting: Mapped[str | None] = mapped_column(String(16))
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(Integer)  # the prompt edited in place
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    score_overall: Mapped[float | None] = mapped_column(Float)
    score_static: Mapped[float | None] = mapped_column(Float)
    score_dynamic: Mapped[float | None] = mapped_column(Float)
    # Checked and bumped by every UPDATE (the ORM's version counter, and the press path's
    # guarded UPDATE in bot/services/press.py): a write based on an old read fails instead of
    # silently undoing another.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    site: Mapped[Site] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it)


class Answer(Base):
    """The answer to one item of one inspection; the business key makes re-sends harmless."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("inspection_id", "item_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(16))
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    remark: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class Photo(Base):
    """A stored, metadata-free image; (chat, message) names the Telegram message it came in."""

    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("chat_id", "message_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    telegram_file_id: Mapped[str | None] = mapped_column(String(255))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    # Indexed: the near-duplicate scan (db/repositories/evidence.py) reads the index only.
    phash: Mapped[int] = mapped_column(BigInteger, index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # when the bot received it
    # When the camera took it (EXIF DateTimeOriginal, read before the metadata was stripped);
    # None: the upload carried no capture time.
    captured_at: Mapped[datetime | None]


class Evidence(Base):
    """A photo attached to an inspection item."""

    __tablename__ = "evidence"
    inspection_id: Mapped[int] = mapped_column(
        ForeignKey("inspections.id", ondelete="CASCADE"), primary_key=True
    )
    item_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), primary_key=True)


class Task(Base):
    """A rectification task: a problem with a responsible unit and a deadline."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("inspection_id", "item_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # inspection | report | finding
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspections.id"))
    item_key: Mapped[str | None] = mapped_column(String(16))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    title: Mapped[str] = mapped_column(Text)
    # The title in English when it was made from English text (a checklist item, a report
    # category); None: English readers see `title`.
    title_en: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    # Bumped on every transition: two presses of the same button race on it, one wins.
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    extension_until: Mapped[datetime | None]  # requested, awaiting an admin's decision
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_by: Mapped[int | None] = mapped_column(BigInteger)
    accepted_at: Mapped[datetime | None]
    fixed_by: Mapped[int | None] = mapped_column(BigInteger)
    fixed_at: Mapped[datetime | None]
    verified_by: Mapped[int | None] = mapped_column(BigInteger)
    verified_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Rework (返工): how often a fix was returned or disputed.
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    relapse_of_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))  # 反弹
    # What the scheduler has already said about this deadline (so it never says it twice).
    reminded_before_at: Mapped[datetime | None]
    reminded_due_at: Mapped[datetime | None]
    last_overdue_reminder_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]


class TaskEvent(Base):
    """One transition of a task: who, when, from and to which state, why, with what evidence."""

    __tablename__ = "task_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)  # None: the system (scheduler)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class TaskCard(Base):
    """Where the task's card is in one chat, and the task version it was posted at.

    The one home of a card's place: written when the outbox delivers a card (and when a
    handler replaces one with a photo card itself), read by whatever edits or replies to it."""

    __tablename__ = "task_cards"
    __table_args__ = (UniqueConstraint("task_id", "chat_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)  # the task's version the card was rendered at
    # A photo card has a caption to edit, a text card text.
    has_photo: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskPhoto(Base):
    """Before (整改前) and after (整改后) photos of a task."""

    __tablename__ = "task_photos"
    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # before | after


class SiteItem(Base):
    """The current verdict of each item at a site: from its last inspection or re-check."""

    __tablename__ = "site_items"
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    standard_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    standard_hash: Mapped[str] = mapped_column(ForeignKey("standard_versions.content_hash"))
    verdict: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # inspection | verification
    source_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(Base):
    """A resident's report (随手拍): a draft while being written, then a ticket."""

    __tablename__ = "reports"
    __table_args__ = (
        # One draft per resident at a time: a half-written report survives restarts.
        Index(
            "uq_reports_one_draft",
            "reporter_id",
            unique=True,
            sqlite_where=text("status = 'draft'"),
            postgresql_where=text("status = 'draft'"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket: Mapped[str | None] = mapped_column(String(24), unique=True)  # R-2026-000123
    reporter_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    step: Mapped[str | None] = mapped_column(String(16))  # the draft's current question
    category: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(Text)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", use_alter=True))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    media_group_id: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)  # rejection or dispute reason
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None]
    confirm_until: Mapped[datetime | None]  # the reporter may confirm or dispute a fix until
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]


class ReportPhoto(Base):
    __tablename__ = "report_photos"
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id"), primary_key=True)


class ReportFollower(Base):
    """A resident who said "me too" (+1) instead of filing the same problem again."""

    __tablename__ = "report_followers"
    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Counter(Base):
    """Named sequences, e.g. the ticket numbers of one year (report:2026)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class JobRun(Base):
    """A scheduled job's run for one period (a week's bulletin, a day's digest): at most once."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class InboxUpdate(Base):
    """Every update from Telegram, written before its batch is confirmed; done when handled."""

    __tablename__ = "inbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_key: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A pending row in a webhook replica's hands (PostgreSQL): whose, and until when unless
    # renewed; an expired claim is a dead replica's, taken by another (bot/telegram/inbox_claims).
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column()


class IntakeState(Base):
    """The getUpdates offset, advanced only after a batch is stored."""

    __tablename__ = "intake_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboxMessage(Base):
    """A message decided on inside a transaction and sent after it, retried until delivered."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(128), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    sent_message_id: Mapped[int | None] = mapped_column(Integer)
    # Who wants to know the sent message's id (e.g. purpose "task_card", ref_id the task id).
    purpose: Mapped[str | None] = mapped_column(String(32))
    ref_id: Mapped[int | None] = mapped_column(Integer)
    # The version of that thing the message was rendered at (a task card: the task's), so its
    # delivery hook can tell whether it is stale on arrival.
    ref_version: Mapped[int | None] = mapped_column(Integer)
    # The replica sending it and until when (wall clock) that claim holds: several replicas
    # drain one outbox (bot/telegram/outbox.py); a dead replica's claim runs out. Recording
    # the outcome clears claimed_until; claimed_by then tells which replica sent the row.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]


class OutboxChat(Base):
    """A chat's shared pace for every replica's outbox: when it may be written to next (its
    1 s pace, a 429's retry_after) and, for a group, its recent sends (20 per minute). Written
    only by the replica whose claim holds the chat's head row."""

    __tablename__ = "outbox_chats"
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ready_at: Mapped[datetime]
    recent: Mapped[list[str]] = mapped_column(JSON, default=list)


class SendBudget(Base):
    """Telegram's 30 messages/s per bot as one token bucket for all replicas (PostgreSQL):
    a claim takes a token per row under this row's lock."""

    __tablename__ = "send_budget"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[datetime]


class ExternalScore(Base):
    """A unit's score in an external test (国测、省测、市季度测评) for one period (2026, 2026-Q3):
    imported from a table, and replaced as a whole, level and period at a time, when that
    period is imported again (bot/services/assessment.py)."""

    __tablename__ = "external_scores"
    __table_args__ = (UniqueConstraint("unit_id", "level", "period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))  # national | provincial | municipal
    period: Mapped[str] = mapped_column(String(8))  # 2026 | 2026-Q3
    year: Mapped[int] = mapped_column(Integer, index=True)
    score: Mapped[float] = mapped_column(Float)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[int | None] = mapped_column(BigInteger)


class SupervisionPlan(Base):
    """A supervision plan (督查计划): a recurring round over a target by a crew, imported from
    plans.yaml (bot/domain/plans.py reads `body`); an admin may pause it in the bot."""

    __tablename__ = "plans"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[dict[str, object]] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlanOccurrence(Base):
    """One site due on one local day: a plan's round, or a spot check or re-check of the
    day's draw (plan ""). The record of what was due, who had it, and what fulfilled it; the
    unique key makes a day's creation idempotent across replicas."""

    __tablename__ = "plan_occurrences"
    __table_args__ = (UniqueConstraint("day", "kind", "plan", "site_id"),
                      Index("ix_plan_occurrences_site_day", "site_id", "day"),
                      Index("ix_plan_occurrences_inspector_day", "inspector_id", "day"))
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # round | spot | recheck
    plan: Mapped[str] = mapped_column(String(64), default="")  # "" for the draw's kinds
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))  # a re-check's task
    inspector_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="due", index=True)
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspections.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class Draw(Base):
    """A day's random spot-check draw (bot/domain/draw.py): its seed, fixed in advance and
    committed by its SHA-256 (announced the day before), the candidates it was drawn from
    (snapshot, so a re-run after the data changed gives the same sites), and when the hash
    was announced and the seed revealed. `day` is the local date, ISO."""

    __tablename__ = "draws"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    seed: Mapped[str] = mapped_column(String(64))  # hex; secret until revealed_at
    seed_hash: Mapped[str] = mapped_column(String(64))  # sha256(seed), hex
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    drawn_at: Mapped[datetime | None]
    snapshot: Mapped[dict[str, object] | None] = mapped_column(JSON)
    snapshot_hash: Mapped[str | None] = mapped_column(String(64))
    announced_at: Mapped[datetime | None]
    revealed_at: Mapped[datetime | None]


class DrawEntry(Base):
    """One site drawn on a day: a spot check, or a re-check of a closed task. `inspection_id`:
    the inspection submitted there for it (a failed re-check of the task's item is a relapse)."""

    __tablename__ = "draw_entries"
    __table_args__ = (UniqueConstraint("day", "site_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[str] = mapped_column(ForeignKey("draws.day", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)  # the order the draw gave
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # spot | recheck
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    stratum: Mapped[str] = mapped_column(String(200))
    weight: Mapped[float] = mapped_column(Float)
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspections.id"))
