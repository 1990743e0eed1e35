"""escalation: the indexes of the escalation scan's queries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_cases_state_received_on', 'cases', ['state', 'received_on']),
    ('ix_cases_state_consent_recorded_at', 'cases', ['state', 'consent_recorded_at']),
    ('ix_cases_state_free_choice_from', 'cases', ['state', 'free_choice_from']),
    ('ix_cases_state_start_by', 'cases', ['state', 'start_by']),
    ('ix_cases_urgent_state_discharge_date', 'cases', ['urgent', 'state', 'discharge_date']),
    ('ix_cases_state_completed_on', 'cases', ['state', 'completed_on']),
    ('ix_case_events_kind_at', 'case_events', ['kind', 'at']),
    ('ix_settled_courses_completed_on', 'settled_courses', ['completed_on']),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
