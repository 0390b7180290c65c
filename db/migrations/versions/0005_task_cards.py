"""One home for a task card's place: task_cards (task, chat, message, rendered version, photo
or text), written when the outbox delivers a card. It replaces tasks.card_chat_id and
tasks.card_message_id, the sent card rows of the outbox as a record of where cards are, and
the version parsed out of a card's dedup key (now outbox.ref_version).

Revision ID: 0005_task_cards
Revises: 0004_english_names
Create Date: 2026-12-05 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0005_task_cards'
down_revision = '0004_english_names'
branch_labels = None
depends_on = None

CARD_PURPOSE = 'task_card'


def _card_version(dedup_key: str) -> int | None:
    """The version a card was queued at, the last part of task:<id>:card:<chat>:<tag>:<v>
    (read here once, to move it into outbox.ref_version)."""
    try:
        return int(dedup_key.rsplit(':', 1)[1])
    except (IndexError, ValueError):
        return None


def _drop_columns(table: str, *columns: str) -> None:
    """Drop plain columns in place. SQLite's batch mode would copy the table and drop the old
    one, and with foreign keys on (db/session.py) that drop deletes through every ON DELETE
    CASCADE pointing at it (tasks: its events, photos, cards); SQLite 3.35+ drops a column
    that no index or constraint names without a copy."""
    for column in columns:
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
        else:
            op.drop_column(table, column)


def upgrade() -> None:
    op.create_table('task_cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('has_photo', sa.Boolean(), nullable=False),
    sa.Column('updated_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_task_cards_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_cards')),
    sa.UniqueConstraint('task_id', 'chat_id', name=op.f('uq_task_cards_task_id'))
    )
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.add_column(sa.Column('ref_version', sa.Integer(), nullable=True))

    bind = op.get_bind()
    outbox = sa.table('outbox', sa.column('id', sa.Integer()), sa.column('dedup_key', sa.String()),
                      sa.column('chat_id', sa.BigInteger()), sa.column('method', sa.String()),
                      sa.column('status', sa.String()), sa.column('purpose', sa.String()),
                      sa.column('ref_id', sa.Integer()), sa.column('ref_version', sa.Integer()),
                      sa.column('sent_at', db.types.UTCDateTime(timezone=True)),
                      sa.column('sent_message_id', sa.Integer()))
    tasks = sa.table('tasks', sa.column('id', sa.Integer()), sa.column('version', sa.Integer()),
                     sa.column('created_at', db.types.UTCDateTime(timezone=True)),
                     sa.column('card_chat_id', sa.BigInteger()),
                     sa.column('card_message_id', sa.Integer()))
    cards = sa.table('task_cards', sa.column('task_id', sa.Integer()),
                     sa.column('chat_id', sa.BigInteger()), sa.column('message_id', sa.Integer()),
                     sa.column('version', sa.Integer()), sa.column('has_photo', sa.Boolean()),
                     sa.column('updated_at', db.types.UTCDateTime(timezone=True)))

    rows = bind.execute(
        sa.select(outbox.c.id, outbox.c.dedup_key, outbox.c.chat_id, outbox.c.method,
                  outbox.c.status, outbox.c.ref_id, outbox.c.sent_at, outbox.c.sent_message_id,
                  tasks.c.version, tasks.c.created_at)
        .join(tasks, tasks.c.id == outbox.c.ref_id)
        .where(outbox.c.purpose == CARD_PURPOSE)
        .order_by(outbox.c.id)).all()
    # (task, chat) -> the newest delivered card there, as the task service used to find it.
    found: dict[tuple[int, int], dict[str, object]] = {}
    posted_as: dict[tuple[int, int, int], bool] = {}  # (task, chat, message) -> a photo card
    for row in rows:
        version = _card_version(row.dedup_key)
        if version is not None:
            bind.execute(sa.update(outbox).where(outbox.c.id == row.id)
                         .values(ref_version=version))
        if row.status != 'sent' or row.sent_message_id is None:
            continue
        photo = row.method == 'sendPhoto'
        posted_as[(row.ref_id, row.chat_id, row.sent_message_id)] = photo
        found[(row.ref_id, row.chat_id)] = dict(
            task_id=row.ref_id, chat_id=row.chat_id, message_id=row.sent_message_id,
            version=version if version is not None else row.version, has_photo=photo,
            updated_at=row.sent_at or row.created_at)
    # The task row named the card a handler posted itself (a text card replaced by a photo
    # card) and the latest one delivered in a group that speaks for the task: it wins there.
    for task in bind.execute(
            sa.select(tasks.c.id, tasks.c.version, tasks.c.created_at, tasks.c.card_chat_id,
                      tasks.c.card_message_id)
            .where(tasks.c.card_chat_id.is_not(None), tasks.c.card_message_id.is_not(None))):
        key = (task.id, task.card_chat_id)
        before = found.get(key)
        if before is not None and before['message_id'] == task.card_message_id:
            continue
        found[key] = dict(
            task_id=task.id, chat_id=task.card_chat_id, message_id=task.card_message_id,
            version=task.version,
            has_photo=posted_as.get((task.id, task.card_chat_id, task.card_message_id), True),
            updated_at=before['updated_at'] if before is not None else task.created_at)
    if found:
        bind.execute(sa.insert(cards), list(found.values()))

    _drop_columns('tasks', 'card_message_id', 'card_chat_id')


def downgrade() -> None:
    with op.batch_alter_table('tasks') as batch_op:
        batch_op.add_column(sa.Column('card_chat_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('card_message_id', sa.Integer(), nullable=True))
    bind = op.get_bind()
    tasks = sa.table('tasks', sa.column('id', sa.Integer()),
                     sa.column('card_chat_id', sa.BigInteger()),
                     sa.column('card_message_id', sa.Integer()))
    cards = sa.table('task_cards', sa.column('id', sa.Integer()),
                     sa.column('task_id', sa.Integer()), sa.column('chat_id', sa.BigInteger()),
                     sa.column('message_id', sa.Integer()))
    # The task row held one card: the latest recorded.
    for card in bind.execute(sa.select(cards.c.task_id, cards.c.chat_id, cards.c.message_id)
                             .order_by(cards.c.id)):
        bind.execute(sa.update(tasks).where(tasks.c.id == card.task_id)
                     .values(card_chat_id=card.chat_id, card_message_id=card.message_id))
    _drop_columns('outbox', 'ref_version')
    op.drop_table('task_cards')
