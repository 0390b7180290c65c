"""pending_assignments.name: the name the organisation file gives someone who has not yet met
the bot, so the office is told by name which inspectors get no daily list until they /start

Revision ID: 0012_pending_names
Revises: 0011_assessment
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_pending_names'
down_revision = '0011_assessment'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pending_assignments') as batch_op:
        batch_op.add_column(
            sa.Column('name', sa.String(length=200), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('pending_assignments') as batch_op:
        batch_op.drop_column('name')
