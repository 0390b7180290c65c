"""Supervision plans and their occurrences: what is due on which day, who has it, what was done.

Revision ID: 0009_plans
Revises: 0008_evidence
Create Date: 2026-12-06 00:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0009_plans'
down_revision = '0008_evidence'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'plans',
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('name_zh', sa.String(length=200), nullable=False),
        sa.Column('name_en', sa.String(length=200), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.Column('paused', sa.Boolean(), nullable=False),
        sa.Column('updated_at', db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_plans')),
    )
    op.create_table(
        'plan_occurrences',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('plan', sa.String(length=64), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('inspector_id', sa.BigInteger(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('inspection_id', sa.Integer(), nullable=True),
        sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('assigned_at', db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('done_at', db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'],
                                name=op.f('fk_plan_occurrences_inspection_id_inspections')),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'],
                                name=op.f('fk_plan_occurrences_site_id_sites')),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'],
                                name=op.f('fk_plan_occurrences_task_id_tasks')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_occurrences')),
        sa.UniqueConstraint('day', 'kind', 'plan', 'site_id',
                            name=op.f('uq_plan_occurrences_day')),
    )
    op.create_index('ix_plan_occurrences_site_day', 'plan_occurrences', ['site_id', 'day'])
    op.create_index('ix_plan_occurrences_inspector_day', 'plan_occurrences',
                    ['inspector_id', 'day'])
    op.create_index(op.f('ix_plan_occurrences_status'), 'plan_occurrences', ['status'])


def downgrade() -> None:
    op.drop_index(op.f('ix_plan_occurrences_status'), table_name='plan_occurrences')
    op.drop_index('ix_plan_occurrences_inspector_day', table_name='plan_occurrences')
    op.drop_index('ix_plan_occurrences_site_day', table_name='plan_occurrences')
    op.drop_table('plan_occurrences')
    op.drop_table('plans')
