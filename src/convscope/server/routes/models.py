from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from ...inspect.weights import filter_images, layer_weights
from ...models.imagenet.store import status
from ...models.kinds import LayerKind
from ...models.registry import MODELS
from ...preprocessing import get_preprocessing
from ...settings import Settings
from ..db.tables import ActiveModel, ModelVersion, iso
from ..encoding import encode_tensor
from ..errors import NotFound
from ..schemas import ActivateRequest, INT4_MAX
from ..security import require_admin
from ..state import AppState, app_state

router = APIRouter(prefix="/models", tags=["models"])


def _version_body(row: ModelVersion, active_id: int | None, details: bool) -> dict:
    body = {"version": row.version, "source": row.source, "created_at": iso(row.created_at),
            "test_accuracy": row.test_accuracy, "active": row.id == active_id, "job_id": row.job_id}
    if details:
        body["details"] = row.details
    return body


def _model_body(state: AppState, name: str, details: bool = False) -> dict:
    spec = MODELS[name]
    with state.db.session() as session:
        rows = session.scalars(select(ModelVersion).where(ModelVersion.model == name)
                               .order_by(ModelVersion.version)).all()
        active_id = session.scalar(select(ActiveModel.version_id).where(ActiveModel.model == name))
    versions = [_version_body(row, active_id, details) for row in rows]
    return {"name": name, "description": spec.description, "dataset": spec.dataset,
            "input_shape": list(spec.input_shape), "class_names": list(spec.class_names),
            "preprocessing": get_preprocessing(spec.preprocessing).describe(), "tags": list(spec.tags),
            "weights": spec.weights_info, "trainable": spec.trainable,
            "pretrained_weights": [_public_status(record) for record in spec.weights],
            "active_version": next((v["version"] for v in versions if v["active"]), None), "versions": versions}


def _public_status(record) -> dict:
    """A weights record with its state on this server (ready / missing and how to get it), without the server's
    folders."""
    body = status(record, Settings.from_env())
    body.pop("path", None)
    body.pop("how_to_get", None)
    return body


def _known(name: str) -> str:
    if name not in MODELS:
        raise NotFound(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return name


@router.get("", summary="Every model with its versions, test metrics and active version")
def list_models(state: AppState = Depends(app_state)) -> list[dict]:
    return [_model_body(state, name) for name in MODELS]


@router.get("/{name}", summary="One model, with every version's training details and history")
def get_model(name: str, state: AppState = Depends(app_state)) -> dict:
    return _model_body(state, _known(name), details=True)


@router.put("/{name}/active", summary="Make a version the one that answers by default (admin)",
            dependencies=[Depends(require_admin)])
def activate(name: str, request: ActivateRequest, state: AppState = Depends(app_state)) -> dict:
    state.models.activate(_known(name), request.version)
    return _model_body(state, name)


@router.get("/{name}/architecture", summary="Layers with kinds, output shapes, parameter counts and FLOPs")
def architecture(name: str, version: int | None = Query(None, ge=1, le=INT4_MAX),
                 state: AppState = Depends(app_state)) -> dict:
    """The model's graph: every tap in execution order with the taps it reads from (``parents``; ``"input"`` is
    the model input), so residual and multi-branch networks draw as they are. ``traced`` is false when the graph
    came from call order rather than tracing (edges approximate)."""
    loaded = state.models.load(state.models.resolve(name, version))
    graph = loaded.checkpoint.adapter.graph.as_dict()
    return {"model": name, "version": loaded.ref.version,
            "parameters": sum(p.numel() for p in loaded.checkpoint.model.parameters()),
            "flops": sum(layer["flops"] for layer in graph["layers"]), **graph}


@router.get("/{name}/weights", summary="Per-layer weight and bias statistics, histograms, and conv filters")
def weights(name: str, version: int | None = Query(None, ge=1, le=INT4_MAX), bins: int = Query(30, ge=2, le=200),
            state: AppState = Depends(app_state)) -> dict:
    """Conv filters come as one encoded tensor per layer, (out, in, kH, kW) on a symmetric scale: 0.5 is a zero
    weight, 0 and 1 are -/+ the layer's largest absolute weight (``scale``)."""
    loaded = state.models.load(state.models.resolve(name, version))
    layers = []
    for entry in state.infer_blocking(lambda: layer_weights(loaded.checkpoint.adapter, bins)):
        out = {"layer": entry["layer"], "kind": entry["kind"]}
        for role in ("weight", "bias"):
            if role in entry:
                out[role] = {k: v for k, v in entry[role].items() if k != "tensor"}
        if entry["kind"] == LayerKind.CONV.value:
            weight = entry["weight"]["tensor"]
            out["filters"] = {"scale": float(weight.abs().max()), "images": encode_tensor(filter_images(weight))}
        layers.append(out)
    return {"model": name, "version": loaded.ref.version, "layers": layers}
