"""saved images keep a compact encoding: a JPEG upload is stored as JPEG, not as a PNG 15-23x its size

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

``input_png`` becomes ``input_image`` with its ``input_format`` ("png" or "jpeg") beside it, and ``input_bytes``,
its size, which the store's size cap sums. Rows written before are PNGs: their size is filled in here.
"""
import io
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.alter_column("input_png", new_column_name="input_image", existing_type=sa.LargeBinary(),
                              existing_nullable=False)
        batch_op.add_column(sa.Column("input_format", sa.String(length=8), nullable=False, server_default="png"))
        batch_op.add_column(sa.Column("input_bytes", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE predictions SET input_bytes = length(input_image)")


def downgrade() -> None:
    from PIL import Image  # the JPEGs and WebPs go back to PNG, as the old revision reads every image: nothing is lost

    connection = op.get_bind()
    ids = connection.execute(sa.text("SELECT id FROM predictions WHERE input_format <> 'png'")).scalars().all()
    for row_id in ids:  # one image in memory at a time
        data = connection.execute(sa.text("SELECT input_image FROM predictions WHERE id = :id"),
                                  {"id": row_id}).scalar()
        png = io.BytesIO()
        Image.open(io.BytesIO(data)).save(png, format="PNG")
        connection.execute(sa.text("UPDATE predictions SET input_image = :png WHERE id = :id"),
                           {"png": png.getvalue(), "id": row_id})
    with op.batch_alter_table("predictions") as batch_op:
        batch_op.drop_column("input_bytes")
        batch_op.drop_column("input_format")
        batch_op.alter_column("input_image", new_column_name="input_png", existing_type=sa.LargeBinary(),
                              existing_nullable=False)
