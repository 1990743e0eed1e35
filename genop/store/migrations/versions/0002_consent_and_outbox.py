"""consent and outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:19:12.235654
"""
from alembic import op
import sqlalchemy as sa
import genop.store.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=255), nullable=True),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.Column('document_path', sa.Text(), nullable=True),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', genop.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', genop.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_outbox_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('key', name=op.f('uq_outbox_key')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_message_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_case_id', ['case_id'], unique=False)
        batch_op.create_index('ix_outbox_status', ['status'], unique=False)

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_decision', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('consent_method', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('consent_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('consent_recorded_by', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('consent_recorded_at', genop.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('consent_run_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('forwarded_at', genop.store.models.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('forwarded_at')
        batch_op.drop_column('consent_run_id')
        batch_op.drop_column('consent_recorded_at')
        batch_op.drop_column('consent_recorded_by')
        batch_op.drop_column('consent_date')
        batch_op.drop_column('consent_method')
        batch_op.drop_column('consent_decision')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status')
        batch_op.drop_index('ix_outbox_case_id')

    op.drop_table('outbox')
