"""What each channel looks for: the dataset images that drive it hardest, with the receptive-field patch around the
strongest place (``POST /api/features/top``), and an image optimised to drive it (``POST /api/features/visualize``,
streamed with the image as it improves). Both are kept on disk under ``<data dir>/features`` per model weights
(their fingerprint: another version, or new weights, is another key), where ``convscope features-overview``
computed ahead of time is found too."""

from __future__ import annotations

import base64
import io

import torch
from fastapi import APIRouter, Depends, Request
from PIL import Image

from ...data.photos import PHOTOS
from ...errors import InputError
from ...inspect.features import (FeatureCache, ImageFiles, Target, VisualizationSettings, cached_top_activating,
                                 cached_visualize, crop, model_key, receptive_field, weights_fingerprint)
from ...inspect.features.objective import check_target
from ..evaluations import find_dataset
from ..progress_stream import answer_with_progress
from ..schemas import FeatureTopRequest, VisualizeRequest, errors
from ..state import AppState, app_state
from ._documented import DocumentedRoute
from .attributions import STREAMED, refuse_above

router = APIRouter(prefix="/features", tags=["features"], route_class=DocumentedRoute, responses=errors(404))
PATCH_SIDE = 64  # px a patch is shown at (nearest neighbour: MNIST's few-pixel patches stay crisp)
# Entries kept on disk per model version, the newest: any settings make a new one, so without a bound requests
# could fill the disk (an EfficientNet visualization at 224 px takes about 0.7 MB, so at most about 350 MB).
KEEP_PER_MODEL = 500
IMAGE_EVERY = 16  # steps between the intermediate images a streamed visualization sends


def png_url(image: torch.Tensor, side: int | None = None) -> str:
    """(C, H, W) in [0, 1] as a PNG data URL, enlarged (nearest) so its longer side is ``side``."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    if side is not None:
        scale = side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.NEAREST)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def runs_at_size(adapter, target, size: tuple[int, int]) -> None:
    """One forward of a blank image of ``size`` up to the target: a size the model's layers cannot take (a
    classifier that wants its own input size, a map shrunk to nothing) is the user's to change, not a 500."""
    if size == tuple(adapter.input_shape[1:]):
        return
    blank = torch.zeros(1, adapter.input_shape[0], *size, device=adapter.device, dtype=adapter.dtype)
    try:
        if target.layer is None:
            with torch.no_grad():
                adapter.logits(blank)
        else:
            adapter.activations(blank, [target.layer])
    except RuntimeError:
        where = "its logits" if target.layer is None else target.layer
        raise InputError(f"{adapter.name} cannot run {size[0]}x{size[1]} images up to {where}: leave the size out "
                         f"(its input is {adapter.input_shape[1]}x{adapter.input_shape[2]}) or pick an earlier "
                         "layer") from None


def cache_of(state: AppState) -> FeatureCache:
    return FeatureCache(state.settings.data_dir / "features", keep=KEEP_PER_MODEL)


def fingerprint_of(state: AppState, loaded) -> str:
    """The version the cache knows the model by: its weights' fingerprint (what ``convscope features-overview``
    uses too), computed once per model version in this worker (VGG16's 528 MB take about a second)."""
    if loaded.ref.id not in state.feature_keys:
        state.feature_keys[loaded.ref.id] = weights_fingerprint(loaded.checkpoint.adapter.module)
    return state.feature_keys[loaded.ref.id]


def dataset_for(state: AppState, adapter, model_dataset: str, name: str | None):
    """(name, the key its pass is cached by, data, source of an index): the MNIST test set for a digit model, the
    sample photos for the others unless a folder is named."""
    name = name or ("mnist:test" if model_dataset == "mnist" else "photos")
    if name == "mnist:test":
        from ...data import load_mnist
        if model_dataset != "mnist":
            raise InputError(f"{adapter.name} does not read MNIST digits: name a folder of photos")
        digits = load_mnist("test", state.settings.engine_settings()).as_float()
        return name, name, digits, lambda i: f"mnist:test:{i}"
    if name == "photos":
        files = [photo.path for photo in PHOTOS.values()]
        return name, name, ImageFiles(files, adapter.preprocessing), lambda i: files[i].stem
    found = find_dataset(name, state.settings.datasets_folder)
    if found.kind != "folder":
        raise InputError(f"{name} is not a folder of images")
    files = found.files().files
    data = ImageFiles(files, adapter.preprocessing)
    # keyed by what the folder holds (every file's name, size and time): a file added or changed is a new pass
    return name, f"{name}:{data.identity()}", data, lambda i: str(files[i].relative_to(found.root))


@router.post("/top", summary="The k dataset images that drive one channel hardest, with the receptive-field patch "
                             "around the strongest position; one pass per layer, kept on disk", responses=STREAMED)
async def top(request: FeatureTopRequest, http: Request, state: AppState = Depends(app_state)):
    def prepare():
        loaded = state.models.load(state.models.resolve(request.model, request.version))
        adapter = loaded.checkpoint.adapter
        check_target(adapter, Target.channel(request.layer, request.channel))
        return loaded, adapter, *dataset_for(state, adapter, loaded.checkpoint.spec.dataset, request.dataset)

    loaded, adapter, name, cache_key, data, source = await state.infer(prepare)

    def work(progress, cancelled) -> dict:
        found = cached_top_activating(cache_of(state), adapter, data, request.layer, request.k,
                                      version=fingerprint_of(state, loaded), dataset=cache_key, progress=progress,
                                      cancelled=cancelled)[request.layer]
        examples = found.examples(request.channel)
        spatial = adapter.graph[request.layer].spatial
        field = receptive_field(adapter, request.layer).as_dict() if spatial else None
        return {"model": loaded.ref.model, "version": loaded.ref.version, "layer": request.layer,
                "channel": request.channel, "dataset": name, "images": found.images, "receptive_field": field,
                "examples": [{**e.as_dict(), "source": source(e.index),
                              "patch": png_url(crop(data[e.index], e.box), PATCH_SIDE)} for e in examples]}

    return await answer_with_progress(http, state, work)


@router.post("/visualize", summary="An image optimised to drive a channel, a neuron or a class logit (Fourier "
                                   "basis, jitter/scale/rotation, optional diversity); streamed with the image as "
                                   "it improves; kept on disk per model weights, target and settings",
             responses=STREAMED)
async def visualize(request: VisualizeRequest, http: Request, state: AppState = Depends(app_state)):
    def prepare():
        loaded = state.models.load(state.models.resolve(request.model, request.version))
        adapter = loaded.checkpoint.adapter
        settings = VisualizationSettings(
            steps=request.steps, parameterisation=request.parameterisation, decorrelate=request.decorrelate,
            size=(request.size, request.size) if request.size else None, batch=request.batch,
            diversity=request.diversity, seed=request.seed).resolved(adapter)
        pixels = settings.size[0] * settings.size[1] / (adapter.input_shape[1] * adapter.input_shape[2])
        macs = sum(tap.macs for tap in adapter.graph.taps) * pixels
        refuse_above(3 * macs * settings.steps * settings.batch, "visualization",
                     "ask for fewer steps or a smaller size, or compute it ahead of time with convscope "
                     "features-overview (the server reads what it stores)")
        target = request.target()
        check_target(adapter, target)
        runs_at_size(adapter, target, settings.size)
        return loaded, adapter, target, settings

    loaded, adapter, target, settings = await state.infer(prepare)

    def work(progress, cancelled) -> dict:
        def show(step: int, images: torch.Tensor) -> None:
            if progress is not None:
                progress(step, settings.steps, images=[png_url(image) for image in images])

        about = {"model": loaded.ref.model, "version": loaded.ref.version, "target": target.as_dict()}
        fingerprint = fingerprint_of(state, loaded)
        if request.only_cached:
            kept = cache_of(state).visualization(model_key(adapter, fingerprint), target, settings)
            if kept is None:
                return {**about, "settings": settings.as_dict(), "cached": False, "images": []}
        result, cached = cached_visualize(cache_of(state), adapter, target, settings, version=fingerprint,
                                          progress=progress, on_image=show, image_every=IMAGE_EVERY,
                                          cancelled=cancelled)
        return {**about, "settings": result.settings.as_dict(), "values": result.values,
                "seconds": round(result.seconds, 3), "cached": cached,
                "images": [png_url(image) for image in result.images]}

    return await answer_with_progress(http, state, work)
