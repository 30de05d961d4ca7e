"""One training job and one evaluation at a time, across every worker sharing the database: a row holds its kind's
one slot (``slot = 1`` in a unique column) while it runs, so a second insert fails on the unique index, with no
lock to take or leave behind. Ending frees the slot (``slot = None``)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .db.database import Database
from .errors import Conflict


def insert_holding_the_slot(db: Database, row, busy: Callable[[int | None], str]) -> int:
    """Insert ``row`` (its ``slot`` set to 1) and return its id; if another row holds the slot, Conflict with the
    message ``busy(that row's id)``."""
    table = type(row)
    try:
        with db.session(write=True) as session:
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        with db.session() as session:
            holder = session.scalar(select(table.id).where(table.slot == 1))
        raise Conflict(busy(holder)) from None
