"""What the app holds while it runs, created in the lifespan (never at import) and reached from routes through
``request.app.state.convscope``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from .db.database import Database
from .jobs import JobManager
from .model_store import ModelStore
from .settings import ServerSettings


@dataclass
class AppState:
    settings: ServerSettings
    db: Database
    models: ModelStore
    jobs: JobManager


def app_state(request: Request) -> AppState:
    """Dependency: the running app's state."""
    return request.app.state.convscope
