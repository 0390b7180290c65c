"""Webhook replicas share the inbox: a pending row's claim (inbox.claimed_by, claimed_until),
a lease a live replica renews and another takes over when it runs out.

Revision ID: 0007_inbox_claims
Revises: 0006_outbox_claims
Create Date: 2026-12-05 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0007_inbox_claims'
down_revision = '0006_outbox_claims'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox') as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', db.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    # Plain columns, dropped in place (see 0005: a batch copy of a table cascades deletes).
    for column in ('claimed_until', 'claimed_by'):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE inbox DROP COLUMN {column}')
        else:
            op.drop_column('inbox', column)
