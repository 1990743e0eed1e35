"""settlement: documents, a-conto, settled months and courses, adjustments, reconciliations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 22:19:38.753484
"""
from alembic import op
import sqlalchemy as sa
import genop.store.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('settled_months',
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('invoice_date', sa.Date(), nullable=False),
    sa.Column('settled_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_settled_months'))
    )
    op.create_table('settlement_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('payer', sa.String(length=32), nullable=False),
    sa.Column('ean', sa.String(length=13), nullable=False),
    sa.Column('period', sa.String(length=32), nullable=False),
    sa.Column('issue_date', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('line_total', genop.store.models.Money(), nullable=False),
    sa.Column('prepaid', genop.store.models.Money(), nullable=False),
    sa.Column('payable', genop.store.models.Money(), nullable=False),
    sa.Column('aconto', genop.store.models.Money(), nullable=False),
    sa.Column('carried', genop.store.models.Money(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('xml', sa.LargeBinary(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('xml_path', sa.Text(), nullable=False),
    sa.Column('html_path', sa.Text(), nullable=False),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_documents')),
    sa.UniqueConstraint('key', name=op.f('uq_settlement_documents_key')),
    sa.UniqueConstraint('number', name=op.f('uq_settlement_documents_number'))
    )
    with op.batch_alter_table('settlement_documents', schema=None) as batch_op:
        batch_op.create_index('ix_settlement_documents_purpose_period', ['purpose', 'period'], unique=False)

    op.create_table('aconto_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('payer', sa.String(length=32), nullable=False),
    sa.Column('amount', genop.store.models.Money(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['settlement_documents.id'], name=op.f('fk_aconto_payments_document_id_settlement_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_aconto_payments')),
    sa.UniqueConstraint('month', 'payer', name='uq_aconto_payments_month_payer')
    )
    op.create_table('course_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('regulation', sa.String(length=96), nullable=False),
    sa.Column('original', genop.store.models.Money(), nullable=False),
    sa.Column('repriced', genop.store.models.Money(), nullable=False),
    sa.Column('difference', genop.store.models.Money(), nullable=False),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_course_adjustments_case_id_cases')),
    sa.ForeignKeyConstraint(['document_id'], ['settlement_documents.id'], name=op.f('fk_course_adjustments_document_id_settlement_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_course_adjustments')),
    sa.UniqueConstraint('case_id', 'regulation', name='uq_course_adjustments_case_regulation')
    )
    op.create_table('settled_courses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('supplement', sa.Boolean(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=False),
    sa.Column('visits', sa.JSON(), nullable=False),
    sa.Column('amount', genop.store.models.Money(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_settled_courses_case_id_cases')),
    sa.ForeignKeyConstraint(['document_id'], ['settlement_documents.id'], name=op.f('fk_settled_courses_document_id_settlement_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settled_courses'))
    )
    with op.batch_alter_table('settled_courses', schema=None) as batch_op:
        batch_op.create_index('ix_settled_courses_document_id', ['document_id'], unique=False)
        batch_op.create_index('uq_settled_courses_case_id', ['case_id'], unique=True, sqlite_where=sa.text('NOT supplement'), postgresql_where=sa.text('NOT supplement'))

    op.create_table('year_reconciliations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('payer', sa.String(length=32), nullable=False),
    sa.Column('aconto_paid', genop.store.models.Money(), nullable=False),
    sa.Column('settled', genop.store.models.Money(), nullable=False),
    sa.Column('prepaid_used', genop.store.models.Money(), nullable=False),
    sa.Column('refund', genop.store.models.Money(), nullable=False),
    sa.Column('readiness_clause', sa.Boolean(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=True),
    sa.Column('created_at', genop.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['settlement_documents.id'], name=op.f('fk_year_reconciliations_document_id_settlement_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_year_reconciliations')),
    sa.UniqueConstraint('year', 'payer', name='uq_year_reconciliations_year_payer')
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled_document_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_visits_settled_document_id_settlement_documents'), 'settlement_documents', ['settled_document_id'], ['id'])
        batch_op.create_index('ix_visits_settled_document_id', ['settled_document_id'], unique=False)
    counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(counters, [{"name": "settlement:lock", "value": 0}])


def downgrade() -> None:
    op.execute("DELETE FROM counters WHERE name = 'settlement:lock'")
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_index('ix_visits_settled_document_id')
        batch_op.drop_constraint(batch_op.f('fk_visits_settled_document_id_settlement_documents'), type_='foreignkey')
        batch_op.drop_column('settled_document_id')

    op.drop_table('year_reconciliations')
    with op.batch_alter_table('settled_courses', schema=None) as batch_op:
        batch_op.drop_index('uq_settled_courses_case_id', sqlite_where=sa.text('NOT supplement'), postgresql_where=sa.text('NOT supplement'))
        batch_op.drop_index('ix_settled_courses_document_id')

    op.drop_table('settled_courses')
    op.drop_table('course_adjustments')
    op.drop_table('aconto_payments')
    with op.batch_alter_table('settlement_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_settlement_documents_purpose_period')

    op.drop_table('settlement_documents')
    op.drop_table('settled_months')
