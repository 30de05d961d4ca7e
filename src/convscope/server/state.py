"""What the app holds while it runs, created in the lifespan (never at import) and reached from routes through
``request.app.state.convscope``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from .db.database import Database
from .evaluations import Evaluations
from .jobs import JobManager
from .model_store import ModelStore
from .sanity_cache import SanityChecks
from .settings import ServerSettings

T = TypeVar("T")


@dataclass
class AppState:
    settings: ServerSettings
    db: Database
    models: ModelStore
    jobs: JobManager
    # Model work runs on ONE thread per worker process. Measured here (bench/http_predict.py): with 16 clients,
    # predictions spread over the request thread pool ran at 130 requests/s (threads fighting over the GIL),
    # on one dedicated thread at 274; more throughput comes from more worker processes, not threads.
    inference: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "convscope-inference"))
    evaluations: Evaluations = field(init=False)
    sanity_checks: SanityChecks = field(default_factory=SanityChecks)
    feature_keys: dict[int, str] = field(default_factory=dict)  # model version id -> its weights' fingerprint

    def __post_init__(self) -> None:
        self.evaluations = Evaluations(self)

    async def infer(self, work: Callable[[], T]) -> T:
        """Run model work on the inference thread, from async code."""
        return await asyncio.get_running_loop().run_in_executor(self.inference, work)

    def infer_blocking(self, work: Callable[[], T]) -> T:
        """Run model work on the inference thread, from a request thread."""
        return self.inference.submit(work).result()


def app_state(request: Request) -> AppState:
    """Dependency: the running app's state."""
    return request.app.state.convscope
