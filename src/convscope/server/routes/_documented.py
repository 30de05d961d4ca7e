"""Routes that document the errors they can answer (in the one error shape) in the OpenAPI schema."""

from __future__ import annotations

import inspect

from fastapi.routing import APIRoute

from ..schemas import errors
from ..security import require_admin
from ..state import AppState


CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


class DocumentedRoute(APIRoute):
    """A route whose OpenAPI entry lists the errors it can answer, in the error shape: 500 always; 404 for a
    record named in the path; 422 when it takes any input; 403 (another site's page) and 413 (the body limit) when
    it changes something; 401 when it is an admin action. A route adds its own (409, 415, ...) with errors()."""

    def __init__(self, path: str, endpoint, **kwargs):
        methods = set(kwargs.get("methods") or ())
        admin = any(getattr(d, "dependency", None) is require_admin for d in kwargs.get("dependencies") or ())
        inputs = [p for p in inspect.signature(endpoint).parameters.values()
                  if p.annotation not in ("AppState", AppState)]
        statuses = [500, *([404] if "{" in path else []), *([422] if inputs else []),
                    *([403, 413] if methods & CHANGES else []), *([401, 403] if admin else [])]
        kwargs["responses"] = {**errors(*statuses), **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)
