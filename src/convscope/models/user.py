"""Bring your own model: a factory in a ``.py`` file, a state_dict, class names and a preprocessing.

The factory is imported from a file the user names on the command line or in the server's settings (never from
anything sent over HTTP). Weights are a plain state_dict: ``.safetensors``, or ``.pt`` / ``.pth`` read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers, so loading a
weights file never runs code from it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import pickle
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import safetensors
import safetensors.torch
import torch
from torch import nn

from ..errors import ModelError
from ..preprocessing import get_preprocessing
from .adapter import ModelAdapter

SHOWN_KEYS = 5  # how many missing / unexpected keys an error names
MAX_CLASS_NAME = 200  # characters: what the database stores
# A model name goes into URLs and a 64-character column; "." and ".." would be read as path steps.
MODEL_NAME = re.compile(r"(?!\.+$)[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class UserModel:
    """What names a user's model (the CLI's ``--model-file``, ``--weights``, ``--classes``, ``--preprocessing``)."""

    model_file: str  # "path/to/file.py:factory"
    weights: str | None = None  # a state_dict file; None: the factory's own (random) initialisation
    classes: str | None = None  # a text file, one class name per line; None: "0", "1", ... per output
    preprocessing: str | dict = "resize"  # a name, a describe() dict, or that dict as JSON text
    name: str | None = None  # default: the factory's name

    @property
    def model_name(self) -> str:
        return self.name or self.model_file.rpartition(":")[2]

    @property
    def file_name(self) -> str:
        """The model file's name and factory, without the folders."""
        path, _, factory = self.model_file.rpartition(":")
        return f"{Path(path).name}:{factory}"

    def public_source(self) -> dict:
        """Where it comes from, by file names only: what the API may show (folders stay on the server)."""
        return {"model_file": self.file_name, "weights": self.weights and Path(self.weights).name,
                "classes": self.classes and Path(self.classes).name}

    def absolute(self) -> UserModel:
        """The same with absolute paths, so that it means the same in a process started elsewhere."""
        path, colon, factory = self.model_file.rpartition(":")
        model_file = f"{Path(path).absolute()}:{factory}" if colon and path else self.model_file
        return replace(self, model_file=model_file,
                       **{key: str(Path(value).absolute()) for key in ("weights", "classes")
                          if (value := getattr(self, key)) is not None})


def load_factory(reference: str) -> Callable[[], nn.Module]:
    """``"path/to/file.py:factory"`` -> the callable ``factory`` defined in that file."""
    path_text, colon, factory_name = reference.rpartition(":")
    if not colon or not path_text or not factory_name:
        raise ModelError(f"a model file is named path/to/file.py:factory, got {reference!r}")
    path = Path(path_text)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    # A module name of its own per file, so two files defining the same names never collide.
    module_name = "convscope_user_model_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code: any error it raises is theirs to see, in one line
        raise ModelError(f"{path} failed to import: {type(e).__name__}: {e}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        defined = sorted(name for name, value in vars(module).items() if callable(value) and not name.startswith("_")
                         and getattr(value, "__module__", None) == module_name)
        raise ModelError(f"{path} has no factory {factory_name!r}; it defines: "
                         f"{', '.join(defined) or 'nothing callable'}")
    return factory


def build(factory: Callable[[], nn.Module], where: str) -> nn.Module:
    try:
        module = factory()
    except Exception as e:
        raise ModelError(f"{where}() failed: {type(e).__name__}: {e}") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"{where}() returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a safetensors file or a PyTorch ``.pt`` / ``.pth`` file (a dict of tensors, or one under
    "state_dict"), told apart by their content, not their names."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    with open(path, "rb") as f:
        head = f.read(9)
    if head[8:9] == b"{":  # safetensors: an 8-byte header length, then the JSON header
        try:
            return safetensors.torch.load_file(str(path))
        except (safetensors.SafetensorError, OSError, ValueError) as e:
            raise ModelError(f"{path} is not a readable safetensors file: {e}") from None
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):  # torch.save's zip, or its older pickle format
        raise ModelError(f"{path} is not a readable PyTorch weights file (neither safetensors nor torch.save)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelError(f"{path} holds more than tensors, and convscope never unpickles arbitrary objects: "
                         "save model.state_dict() (with torch.save or safetensors) instead") from None
    except Exception as e:  # torch.load fails in many ways on files that are not its own
        raise ModelError(f"{path} is not a readable PyTorch weights file ({type(e).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} does not hold a state_dict (a dict of tensor names to tensors)")
    return state


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Strict loading, with the first few missing, unexpected and mismatched keys named."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
    problems = []
    for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape (file vs model)", mismatched)):
        if keys:
            more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
            problems.append(f"{title}: {', '.join(keys[:SHOWN_KEYS])}{more}")
    if problems:
        raise ModelError(f"{where} does not match the model's state_dict: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


def read_classes(path: str | Path) -> list[str]:
    """One class name per line; blank lines are skipped."""
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read the class names in {path}: {e}") from None
    if not names:
        raise ModelError(f"{path} holds no class names (one per line)")
    too_long = [name for name in names if len(name) > MAX_CLASS_NAME]
    if too_long:
        raise ModelError(f"{path}: class names are at most {MAX_CLASS_NAME} characters; {too_long[0][:40]!r}... "
                         "is longer")
    return names


def parse_preprocessing(text: str | dict) -> str | dict:
    """A preprocessing name, or its parameters as a JSON object (``{"name": "resize", "size": 64}``)."""
    if isinstance(text, dict) or not text.lstrip().startswith("{"):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelError(f"the preprocessing is neither a name nor a JSON object: {e}") from None
    return value


def load_user_model(config: UserModel, device: str | torch.device = "cpu") -> ModelAdapter:
    """The user's model, weights loaded, wrapped: ready for an ``Inspector``."""
    factory = load_factory(config.model_file)
    module = build(factory, config.model_file)
    if config.weights is not None:
        load_weights(module, read_state_dict(config.weights), config.weights)
    module.to(device)
    preprocessing = get_preprocessing(parse_preprocessing(config.preprocessing))
    class_names = read_classes(config.classes) if config.classes is not None else None
    if not MODEL_NAME.fullmatch(config.model_name):
        raise ModelError(f"model names are 1-64 letters, digits, '_', '.' or '-'; got {config.model_name!r}")
    return ModelAdapter(module, class_names, preprocessing, name=config.model_name,
                        metadata={"description": f"{config.model_name}, a model of your own ({config.file_name})",
                                  "dataset": "user", "source": config.public_source()})

