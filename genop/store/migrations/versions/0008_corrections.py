"""corrections: a visit removed or repriced by a dispute's correction of a settled month

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_by_redo_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('priced_as', sa.String(length=16), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_visits_removed_by_redo_id_dispute_redos'), 'dispute_redos',
                                    ['removed_by_redo_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_visits_removed_by_redo_id_dispute_redos'), type_='foreignkey')
        batch_op.drop_column('priced_as')
        batch_op.drop_column('removed_by_redo_id')
