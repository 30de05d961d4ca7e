"""The ASGI app: ``create_app(settings)``. The REST API lives under ``/api`` (OpenAPI at ``/api/openapi.json``,
interactive docs at ``/api/docs``); the web UI's static files are served from ``/``.

Start-up (the lifespan) migrates the database, records the packaged model versions, loads and warms the active
models, and fails jobs a previous server left behind. Nothing loads or trains per request.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from importlib import resources

import swagger_ui_bundle
import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..models.registry import MODELS, register_user_model
from ..models.user import UserModel
from .db.database import Database
from .errors import install_error_handlers
from .jobs import JobManager
from .model_store import ModelStore
from .routes import ROUTERS, docs, vendor
from .security import SecurityMiddleware, allowed_host_names, with_admin_token
from .settings import ServerSettings
from .state import AppState

log = logging.getLogger("convscope.server")
STATIC_DIR = resources.files("convscope.server") / "static"


def _warm_up(store: ModelStore) -> None:
    """Load the models the home page uses (the digit models and any of the user's own) and run one inspection,
    so the first request pays no set-up cost. Pretrained ImageNet models load once, at their first request
    (EfficientNet-Lite0 in about 0.45 s, VGG16 in seconds), and stay loaded: loading them all here would cost every
    worker that time and memory at every start."""
    for name, spec in MODELS.items():
        if not spec.loadable or spec.weights:
            continue
        loaded = store.load(store.active(name))
        loaded.inspector.inspect_prepared(torch.zeros(spec.input_shape))


def app_from_environment() -> FastAPI:
    """The app factory uvicorn's worker processes call: settings from ``CONVSCOPE_*`` variables."""
    return create_app(ServerSettings())


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings, generated = with_admin_token(settings or ServerSettings())
    if generated:
        log.warning("admin token (needed for training, activation and deletion): %s", settings.admin_token)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        torch.set_num_threads(settings.inference_threads)
        for user_model in settings.user_models:  # each worker process loads them itself
            register_user_model(UserModel(**user_model.model_dump()).absolute())
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database)
        db.migrate()
        models = ModelStore(db)  # one replica: one inference thread per worker (see AppState.inference)
        models.seed()
        _warm_up(models)
        jobs = JobManager(db, models, settings.engine_settings(), asyncio.get_running_loop())
        jobs.fail_stale_jobs()
        app.state.convscope = AppState(settings, db, models, jobs)
        try:
            yield
        finally:
            jobs.shutdown()
            app.state.convscope.inference.shutdown()
            db.dispose()

    app = FastAPI(title="convscope", version=__version__, lifespan=lifespan,
                  description="See inside convolutional networks: predict, explain, train, save and report.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    app.state.settings = settings
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/api")
    app.include_router(docs.router)
    app.include_router(vendor.router)
    app.mount("/api/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")
    app.mount("/", StaticFiles(directory=str(STATIC_DIR), html=True), name="ui")

    if settings.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID"])
    app.add_middleware(SecurityMiddleware, max_body_bytes=settings.max_body_bytes,
                       allowed_hosts=allowed_host_names(settings),
                       allowed_origins=settings.allowed_origins, body_timeout=settings.body_timeout)
    return app
