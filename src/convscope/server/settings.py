"""The server's settings: one typed object with working defaults, overridden by ``CONVSCOPE_*`` environment
variables and then by ``convscope serve`` flags.

Variables: ``CONVSCOPE_HOST``, ``CONVSCOPE_PORT``, ``CONVSCOPE_DATA_DIR``, ``CONVSCOPE_DATABASE_URL``,
``CONVSCOPE_MODEL_DIR``, ``CONVSCOPE_MNIST_DIR``, ``CONVSCOPE_MNIST_MIRRORS``, ``CONVSCOPE_MAX_BODY_BYTES``,
``CONVSCOPE_MAX_IMAGE_PIXELS``, ``CONVSCOPE_ALLOWED_ORIGINS``, ``CONVSCOPE_ADMIN_TOKEN``, ``CONVSCOPE_WORKERS``,
``CONVSCOPE_INFERENCE_THREADS``, ``CONVSCOPE_USER_MODELS``.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ..images import MAX_PIXELS
from ..settings import Settings as EngineSettings
from .db.database import sqlite_url

LOOPBACK_NAMES = ("localhost",)


class UserModelSettings(BaseModel):
    """A model of the user's own that the server loads at start-up (see ``convscope.models.user``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_file: str  # path/to/file.py:factory
    weights: str | None = None
    classes: str | None = None
    preprocessing: str | dict = "resize"
    name: str | None = None


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVSCOPE_", frozen=True)

    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("convscope")))
    # None: a SQLite file in the data directory. PostgreSQL: postgresql://user:password@host/dbname
    database_url: str | None = None
    model_dir: Path | None = None
    mnist_dir: Path | None = None
    mnist_mirrors: Annotated[tuple[str, ...], NoDecode] = ()
    # Labelled image sets to evaluate and fine-tune models on (each sub-folder a dataset, its sub-folders the
    # classes; each .csv a dataset too), placed there by whoever runs the server or uploaded through the API. The
    # API names them, never reads a path from a request. None: <data dir>/datasets.
    datasets_dir: Path | None = None
    max_body_bytes: int = Field(5 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(MAX_PIXELS, gt=0)
    # All saved predictions' images together; a save that would pass it is refused (507).
    max_stored_image_bytes: int = Field(1024 ** 3, gt=0)
    # Per connection (see protocol.py and security.py): seconds for a request's head (request line and headers)
    # and for its body to arrive, seconds an idle kept-alive connection stays open, and the head's size.
    header_timeout: float = Field(10.0, gt=0)
    body_timeout: float = Field(30.0, gt=0)
    keep_alive_timeout: int = Field(5, ge=1)
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    # Open connections per worker process; one more is answered 503 (a process has 1,024 file descriptors).
    max_connections: int = Field(500, ge=1)
    # Browser origins besides the server's own that may call the API (CORS), comma-separated.
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Needed for admin actions (training, activation, deletion) when the server binds to anything but loopback.
    # None there: one is generated and printed at start-up.
    admin_token: str | None = None
    # Worker processes. Each answers requests on one model thread, so throughput grows with processes: one per
    # core (up to 4) by default. They share the database, jobs included.
    workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 4), ge=1)
    # torch threads per inference: one, so that the workers (and a training job) share the cores without stalls.
    inference_threads: int = Field(1, ge=1)
    # Models of the user's own, loaded at start-up (never code sent over HTTP). As a variable, a JSON list:
    # [{"model_file": "net.py:build", "weights": "net.safetensors", "classes": "classes.txt"}]
    user_models: tuple[UserModelSettings, ...] = ()

    @field_validator("mnist_mirrors", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @property
    def loopback(self) -> bool:
        if self.host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def datasets_folder(self) -> Path:
        return self.datasets_dir or self.data_dir / "datasets"

    @property
    def database(self) -> str:
        return self.database_url or sqlite_url(self.data_dir / "convscope.db")

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(data_dir=self.data_dir, mnist_dir=self.mnist_dir, model_dir=self.model_dir,
                              mnist_mirrors=self.mnist_mirrors or None)

    def as_environment(self) -> dict[str, str]:
        """These settings as ``CONVSCOPE_*`` variables: how worker processes receive them."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None or value == ():
                continue
            if name == "user_models":
                env["CONVSCOPE_USER_MODELS"] = json.dumps(value)
            else:
                env[f"CONVSCOPE_{name.upper()}"] = ",".join(value) if isinstance(value, tuple) else str(value)
        return env
