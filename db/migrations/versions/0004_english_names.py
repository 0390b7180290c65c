"""English beside Chinese: sites.name_en (from the organisation file), tasks.title_en (a task's
title in the standard's or category's English, when it was made from one)

Revision ID: 0004_english_names
Revises: 0003
Create Date: 2026-12-05 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_english_names'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sites') as batch_op:
        batch_op.add_column(
            sa.Column('name_en', sa.String(length=200), server_default='', nullable=False))
    with op.batch_alter_table('tasks') as batch_op:
        batch_op.add_column(sa.Column('title_en', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks') as batch_op:
        batch_op.drop_column('title_en')
    with op.batch_alter_table('sites') as batch_op:
        batch_op.drop_column('name_en')
