"""any number of classes: class names beside class indices, no 0-9 constraints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Predictions, re-runs and reports keep the class index and now also the class name (the model's own, so a
record reads right even after the model is gone). Rows written before this revision are MNIST digits, whose
names are their indices.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# (table, index column, new name column, the 0-9 CHECK constraint it had)
COLUMNS = (("predictions", "predicted", "predicted_class", "predicted_digit"),
           ("reruns", "predicted", "predicted_class", None),
           ("reports", "correct_label", "correct_class", "correct_digit"))


def upgrade() -> None:
    for table, index, name, check in COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            if check:
                batch_op.drop_constraint(check, type_='check')
            batch_op.add_column(sa.Column(name, sa.String(length=200), nullable=True))
        op.execute(f"UPDATE {table} SET {name} = CAST({index} AS VARCHAR(200))")
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(name, existing_type=sa.String(length=200), nullable=False)


def downgrade() -> None:
    for table, index, name, check in COLUMNS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column(name)
            if check:
                batch_op.create_check_constraint(check, f'{index} BETWEEN 0 AND 9')
