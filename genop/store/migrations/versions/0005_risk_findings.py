"""escalation: risk findings and their trail

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:00:00
"""
from alembic import op
import sqlalchemy as sa
import genop.store.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('municipality', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('since', sa.Date(), nullable=False),
    sa.Column('level_since', sa.Date(), nullable=False),
    sa.Column('opened_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_risk_findings_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_findings'))
    )
    with op.batch_alter_table('risk_findings', schema=None) as batch_op:
        batch_op.create_index('ix_risk_findings_case_id', ['case_id'], unique=False)
        batch_op.create_index('ix_risk_findings_kind_closed_on', ['kind', 'closed_on'], unique=False)
        batch_op.create_index('uq_risk_findings_open_key', ['key'], unique=True,
                              sqlite_where=sa.text('closed_on IS NULL'),
                              postgresql_where=sa.text('closed_on IS NULL'))

    op.create_table('risk_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('finding_id', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('scan_on', sa.Date(), nullable=False),
    sa.Column('at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('figures', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['finding_id'], ['risk_findings.id'], name=op.f('fk_risk_events_finding_id_risk_findings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_events'))
    )
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.create_index('ix_risk_events_finding_id', ['finding_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('risk_events', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_events_finding_id')
    op.drop_table('risk_events')
    with op.batch_alter_table('risk_findings', schema=None) as batch_op:
        batch_op.drop_index('uq_risk_findings_open_key', sqlite_where=sa.text('closed_on IS NULL'),
                            postgresql_where=sa.text('closed_on IS NULL'))
        batch_op.drop_index('ix_risk_findings_kind_closed_on')
        batch_op.drop_index('ix_risk_findings_case_id')
    op.drop_table('risk_findings')
