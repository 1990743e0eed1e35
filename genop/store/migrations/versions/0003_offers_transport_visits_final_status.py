"""offers, transport, visits, final status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:49:12.030321
"""
from alembic import op
import sqlalchemy as sa
import genop.store.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('visit_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_name', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('rejects_path', sa.Text(), nullable=True),
    sa.Column('imported_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_imports'))
    )
    op.create_table('final_statuses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=False),
    sa.Column('assessment', sa.Text(), nullable=False),
    sa.Column('consent_to_share', sa.Boolean(), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_final_statuses_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_final_statuses')),
    sa.UniqueConstraint('case_id', name=op.f('uq_final_statuses_case_id'))
    )
    op.create_table('visits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('visit_date', sa.Date(), nullable=False),
    sa.Column('sks_code', sa.String(length=16), nullable=False),
    sa.Column('tariff_group', sa.String(length=16), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('group_size', sa.Integer(), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_visits_case_id_cases')),
    sa.ForeignKeyConstraint(['import_id'], ['visit_imports.id'], name=op.f('fk_visits_import_id_visit_imports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_visits_fingerprint'))
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_case_id_date', ['case_id', 'visit_date'], unique=False)

    op.create_table('transport_bookings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('session_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('destination', sa.String(length=64), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('cancel_outbox_id', sa.Integer(), nullable=True),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', genop.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['cancel_outbox_id'], ['outbox.id'], name=op.f('fk_transport_bookings_cancel_outbox_id_outbox')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_transport_bookings_case_id_cases')),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_transport_bookings_outbox_id_outbox')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transport_bookings')),
    sa.UniqueConstraint('case_id', 'sequence', name='uq_transport_bookings_case_sequence')
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('forwarded_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('first_session_at', genop.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_session_offered_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('free_choice_letter_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('completed_on', sa.Date(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('completed_on')
        batch_op.drop_column('free_choice_letter_on')
        batch_op.drop_column('first_session_offered_on')
        batch_op.drop_column('first_session_at')
        batch_op.drop_column('forwarded_on')

    op.drop_table('transport_bookings')
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ix_visits_case_id_date')

    op.drop_table('visits')
    op.drop_table('final_statuses')
    op.drop_table('visit_imports')
