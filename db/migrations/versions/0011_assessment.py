"""External test scores (国测、省测、市季度测评) per unit and period, for the assessment.

Revision ID: 0011_assessment
Revises: 0010_draws
Create Date: 2026-12-06 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0011_assessment'
down_revision = '0010_draws'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'external_scores',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('level', sa.String(length=16), nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('imported_at', db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('imported_by', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'],
                                name=op.f('fk_external_scores_unit_id_units')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_external_scores')),
        sa.UniqueConstraint('unit_id', 'level', 'period',
                            name=op.f('uq_external_scores_unit_id')),
    )
    op.create_index(op.f('ix_external_scores_unit_id'), 'external_scores', ['unit_id'],
                    unique=False)
    op.create_index(op.f('ix_external_scores_year'), 'external_scores', ['year'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_external_scores_year'), table_name='external_scores')
    op.drop_index(op.f('ix_external_scores_unit_id'), table_name='external_scores')
    op.drop_table('external_scores')
