"""cases, plan documents, events, quarantine

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:06:00.678710
"""
from alembic import op
import sqlalchemy as sa
import genop.store.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_number', sa.String(length=32), nullable=False),
    sa.Column('plan_id', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('route', sa.String(length=32), nullable=True),
    sa.Column('municipality_code', sa.String(length=8), nullable=False),
    sa.Column('payer', sa.String(length=32), nullable=True),
    sa.Column('diagnosis_group', sa.String(length=64), nullable=True),
    sa.Column('level', sa.String(length=40), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('transport_first_session', sa.Boolean(), nullable=False),
    sa.Column('discharge_date', sa.Date(), nullable=False),
    sa.Column('start_by', sa.Date(), nullable=True),
    sa.Column('free_choice_from', sa.Date(), nullable=False),
    sa.Column('cpr', sa.String(length=10), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('case_number', name=op.f('uq_cases_case_number')),
    sa.UniqueConstraint('plan_id', name=op.f('uq_cases_plan_id'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_cpr', ['cpr'], unique=False)
        batch_op.create_index('ix_cases_free_choice_from', ['free_choice_from'], unique=False)
        batch_op.create_index('ix_cases_municipality_state', ['municipality_code', 'state'], unique=False)
        batch_op.create_index('ix_cases_start_by', ['start_by'], unique=False)
        batch_op.create_index('ix_cases_state', ['state'], unique=False)

    op.create_table('counters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_counters'))
    )
    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_name', sa.String(length=255), nullable=False),
    sa.Column('stored_path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('received_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index('ix_quarantine_received_at', ['received_at'], unique=False)

    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_events_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events'))
    )
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.create_index('ix_case_events_case_id', ['case_id', 'id'], unique=False)

    op.create_table('plan_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('encoding', sa.String(length=8), nullable=False),
    sa.Column('source_name', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('parsed', sa.JSON(), nullable=False),
    sa.Column('received_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_plan_documents_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_documents')),
    sa.UniqueConstraint('case_id', 'revision', name='uq_plan_documents_case_revision')
    )
    with op.batch_alter_table('plan_documents', schema=None) as batch_op:
        batch_op.create_index('ix_plan_documents_sha256', ['sha256'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('plan_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_documents_sha256')

    op.drop_table('plan_documents')
    with op.batch_alter_table('case_events', schema=None) as batch_op:
        batch_op.drop_index('ix_case_events_case_id')

    op.drop_table('case_events')
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_received_at')

    op.drop_table('quarantine')
    op.drop_table('counters')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_state')
        batch_op.drop_index('ix_cases_start_by')
        batch_op.drop_index('ix_cases_municipality_state')
        batch_op.drop_index('ix_cases_free_choice_from')
        batch_op.drop_index('ix_cases_cpr')

    op.drop_table('cases')
