"""Evidence that can be trusted: a photo's capture time (photos.captured_at, from its EXIF
before the metadata is stripped) and an index on photos.phash for the near-duplicate scan.

Revision ID: 0008_evidence
Revises: 0007_inbox_claims
Create Date: 2026-12-06 00:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0008_evidence'
down_revision = '0007_inbox_claims'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('photos') as batch_op:
        batch_op.add_column(sa.Column('captured_at', db.types.UTCDateTime(timezone=True),
                                      nullable=True))
    op.create_index('ix_photos_phash', 'photos', ['phash'])


def downgrade() -> None:
    op.drop_index('ix_photos_phash', table_name='photos')
    # A plain column, dropped in place (see 0005: a batch copy of a table cascades deletes).
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE photos DROP COLUMN captured_at')
    else:
        op.drop_column('photos', 'captured_at')
