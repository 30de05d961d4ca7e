"""One typed settings object with working defaults, overridable by ``CONVSCOPE_*`` environment variables.

Zero configuration works: data lives in the user's data directory. Tests and CI point ``CONVSCOPE_MNIST_DIR``
at a local copy of MNIST.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class Settings:
    """Where the engine keeps its data: read from the CONVSCOPE_* environment variables by ``from_env()``."""

    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir("convscope")))
    # A folder holding the four MNIST idx files (.gz or raw). None: ``<data_dir>/mnist``, downloaded on demand.
    mnist_dir: Path | None = None
    # Where trained checkpoints go. None: ``<data_dir>/models``.
    model_dir: Path | None = None
    # Mirrors to download MNIST from, tried in order (CONVSCOPE_MNIST_MIRRORS, comma-separated URLs).
    mnist_mirrors: tuple[str, ...] | None = None
    # A folder of pretrained weights files placed by hand (official file names), looked in before the cache.
    weights_dir: Path | None = None
    # Where official weights are downloaded from instead of their URLs' host (CONVSCOPE_WEIGHTS_MIRROR): a base
    # URL holding the same file names, e.g. a local mirror.
    weights_mirror: str | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        defaults = cls()
        return cls(
            data_dir=_env_path("CONVSCOPE_DATA_DIR") or defaults.data_dir,
            mnist_dir=_env_path("CONVSCOPE_MNIST_DIR"),
            model_dir=_env_path("CONVSCOPE_MODEL_DIR"),
            mnist_mirrors=tuple(u.strip() for u in os.environ.get("CONVSCOPE_MNIST_MIRRORS", "").split(",")
                                if u.strip()) or None,
            weights_dir=_env_path("CONVSCOPE_WEIGHTS_DIR"),
            weights_mirror=os.environ.get("CONVSCOPE_WEIGHTS_MIRROR") or None,
        )

    @property
    def mnist_cache_dir(self) -> Path:
        return self.data_dir / "mnist"

    @property
    def weights_cache_dir(self) -> Path:
        """Downloaded pretrained weights, verified."""
        return self.data_dir / "weights"

    @property
    def models_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def runs_dir(self) -> Path:
        """Training runs' TensorBoard logs, one folder per run (``convscope tensorboard`` serves it)."""
        return self.data_dir / "runs"
