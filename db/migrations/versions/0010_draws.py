"""Random spot checks: a day's draw (seed committed in advance, candidates snapshot) and the
sites drawn.

Revision ID: 0010_draws
Revises: 0009_plans
Create Date: 2026-12-06 00:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0010_draws'
down_revision = '0009_plans'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('draws',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('seed', sa.String(length=64), nullable=False),
    sa.Column('seed_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('drawn_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('snapshot', sa.JSON(), nullable=True),
    sa.Column('snapshot_hash', sa.String(length=64), nullable=True),
    sa.Column('announced_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revealed_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_draws'))
    )
    op.create_table('draw_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('stratum', sa.String(length=200), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['day'], ['draws.day'], name=op.f('fk_draw_entries_day_draws'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'],
                            name=op.f('fk_draw_entries_inspection_id_inspections')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_draw_entries_site_id_sites')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_draw_entries_task_id_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_draw_entries')),
    sa.UniqueConstraint('day', 'site_id', name=op.f('uq_draw_entries_day'))
    )
    with op.batch_alter_table('draw_entries') as batch_op:
        batch_op.create_index(batch_op.f('ix_draw_entries_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_draw_entries_site_id'), ['site_id'], unique=False)


def downgrade() -> None:
    op.drop_table('draw_entries')
    op.drop_table('draws')
