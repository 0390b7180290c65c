"""Several replicas drain one outbox: a row's claim (outbox.claimed_by, claimed_until), each
chat's shared pace (outbox_chats) and one send budget for all replicas (send_budget).

Revision ID: 0006_outbox_claims
Revises: 0005_task_cards
Create Date: 2026-12-05 21:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0006_outbox_claims'
down_revision = '0005_task_cards'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', db.types.UTCDateTime(timezone=True),
                                      nullable=True))
    op.create_table('outbox_chats',
    sa.Column('chat_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('ready_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recent', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('chat_id', name=op.f('pk_outbox_chats'))
    )
    op.create_table('send_budget',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('refilled_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_send_budget'))
    )
    # The one bucket, full (capped at bot/telegram/outbox.py's BUDGET_BURST when it is next refilled).
    budget = sa.table('send_budget', sa.column('id', sa.Integer()),
                      sa.column('tokens', sa.Float()),
                      sa.column('refilled_at', db.types.UTCDateTime(timezone=True)))
    op.bulk_insert(budget, [dict(id=1, tokens=8.0, refilled_at=db.types.utcnow())])


def downgrade() -> None:
    op.drop_table('send_budget')
    op.drop_table('outbox_chats')
    # Plain columns, dropped in place (see 0005: a batch copy of a table cascades deletes).
    for column in ('claimed_until', 'claimed_by'):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE outbox DROP COLUMN {column}')
        else:
            op.drop_column('outbox', column)
