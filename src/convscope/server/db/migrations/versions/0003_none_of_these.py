"""reports may say "none of these": the correct class can be unknown to the model

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A report whose correct label and class are NULL says the input is none of the model's classes (its reason says
what it is). Rows written before this revision all have a class and are unchanged.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch_op:
        batch_op.alter_column("correct_label", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("correct_class", existing_type=sa.String(length=200), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM reports WHERE correct_label IS NULL")  # a "none of these" has no class to keep
    with op.batch_alter_table("reports") as batch_op:
        batch_op.alter_column("correct_label", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("correct_class", existing_type=sa.String(length=200), nullable=False)
