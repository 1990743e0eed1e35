"""disputes: disputes, their timeline and redos

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:00:00
"""
from alembic import op
import sqlalchemy as sa
import genop.store.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('disputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('about', sa.String(length=40), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('invoice_number', sa.String(length=32), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=True),
    sa.Column('municipality', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('opened_by', sa.String(length=128), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('mediation_called_on', sa.Date(), nullable=True),
    sa.Column('mediation_on', sa.Date(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_disputes_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_disputes')),
    sa.UniqueConstraint('number', name=op.f('uq_disputes_number'))
    )
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.create_index('ix_disputes_case_id', ['case_id'], unique=False)
        batch_op.create_index('ix_disputes_invoice_number', ['invoice_number'], unique=False)
        batch_op.create_index('ix_disputes_state', ['state'], unique=False)

    op.create_table('dispute_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('by', sa.String(length=128), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_events_dispute_id_disputes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_events'))
    )
    with op.batch_alter_table('dispute_events', schema=None) as batch_op:
        batch_op.create_index('ix_dispute_events_dispute_id', ['dispute_id'], unique=False)

    op.create_table('dispute_redos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=128), nullable=False),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('produced', sa.JSON(), nullable=False),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', genop.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_dispute_redos_dispute_id_disputes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispute_redos')),
    sa.UniqueConstraint('key', name=op.f('uq_dispute_redos_key'))
    )
    with op.batch_alter_table('dispute_redos', schema=None) as batch_op:
        batch_op.create_index('ix_dispute_redos_dispute_id', ['dispute_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dispute_redos', schema=None) as batch_op:
        batch_op.drop_index('ix_dispute_redos_dispute_id')

    op.drop_table('dispute_redos')
    with op.batch_alter_table('dispute_events', schema=None) as batch_op:
        batch_op.drop_index('ix_dispute_events_dispute_id')

    op.drop_table('dispute_events')
    with op.batch_alter_table('disputes', schema=None) as batch_op:
        batch_op.drop_index('ix_disputes_state')
        batch_op.drop_index('ix_disputes_invoice_number')
        batch_op.drop_index('ix_disputes_case_id')

    op.drop_table('disputes')
