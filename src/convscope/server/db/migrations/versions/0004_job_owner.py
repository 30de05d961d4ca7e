"""training jobs name the server process that runs them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

``owner`` is "host:pid:start" of the server worker that started the job (start: the process's start time, so a
reused pid is not taken for the same process). A server that starts on the same host finds the jobs whose owner is
gone and marks them failed at once, instead of waiting for their heartbeat to go stale. Jobs written before this
revision have no owner and are settled by their heartbeat as before.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch_op:
        batch_op.drop_column("owner")
