"""Attribution methods side by side (``POST /api/attributions``), the sanity checks of a method against the
model's weights and against a model trained on shuffled labels (``POST /api/sanity``), and its deletion and
insertion curves (``POST /api/faithfulness``): on the inference thread like every model computation, answered with
progress to a client that accepts NDJSON (progress_stream.py), and stopped when that client goes away."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ...errors import InputError
from ...inspect.attribution import ATTRIBUTIONS, Attribution, attribute
from ...inspect.attribution.base import Run
from ...inspect.attribution.registry import layer_for
from ...inspect.attribution.faithfulness import deletion_insertion, faithfulness_cost
from ...inspect.attribution.sanity import cascading_randomisation, check_cost, data_randomisation, sanity_inputs
from ..encoding import encode_exact, encode_tensor
from ..progress_stream import NDJSON, answer_with_progress
from ..schemas import AttributionRequest, FaithfulnessRequest, MethodCheck, SanityRequest, errors
from ..state import AppState, app_state
from ._documented import DocumentedRoute
from ._inputs import json_image

router = APIRouter(tags=["explain"], route_class=DocumentedRoute, responses=errors(404))
# The most one request may take of the worker's one inference thread, about half a minute of two cores here:
# mnist_cnn takes any method, and a sanity check of any over 32 digits (occlusion: 72 GMACs); efficientnet_lite0
# every method side by side (about 0.3 TMACs), and a check of the one-pass methods over its four photos (Grad-CAM:
# 0.46 TMACs, about 15 s), not of the slow ones (Integrated Gradients: 23 TMACs, minutes: convscope sanity runs
# those); VGG16's occlusion alone is 2.6 TMACs.
MOST_MACS = 1e12


def refuse_above(macs: float, what: str, instead: str) -> None:
    if macs > MOST_MACS:  # other requests would wait behind it for minutes
        raise InputError(f"this {what} would take {macs / 1e9:,.0f} GMACs (at most {MOST_MACS / 1e9:,.0f}): {instead}")


@router.get("/attributions", summary="The attribution methods: name, title, paper, cost, whether slow, whether "
                                     "signed, whether a CAM (needs a layer)")
def methods() -> dict:
    return {"methods": [method.describe() for method in ATTRIBUTIONS.values()]}


STREAMED = {200: {"description": f"the answer; with `Accept: {NDJSON}`, progress lines and then the answer",
                   "content": {NDJSON: {}}}}


def explained_input(state: AppState, request: AttributionRequest):
    """The model, its adapter, the prepared input and its framing; a request too costly or naming a layer no CAM
    can use refused before any work begins."""
    image = json_image(request, state.settings)
    loaded = state.models.load(state.models.resolve(request.model, request.version))
    adapter = loaded.checkpoint.adapter
    refuse_above(sum(ATTRIBUTIONS[name].macs(adapter) for name in request.methods), "request",
                 "ask for fewer or cheaper methods, or run convscope explain --attributions")
    for name in request.methods:
        layer_for(adapter, name, request.layer)
    x, framing = image.model_input(adapter.preprocessing)
    return loaded, adapter, x, framing


def explain_all(adapter, x, request: AttributionRequest, progress, cancelled) -> list[Attribution]:
    """Each method's attribution, in order, all for one class: the one asked, or the predicted one (found once).
    Progress counts the inputs all the methods evaluate, as one request."""
    expected = [ATTRIBUTIONS[name].passes(Run(adapter, x[None], 0, request.layer)) for name in request.methods]
    maps, target = [], request.target
    for k, name in enumerate(request.methods):
        before = sum(expected[:k])
        step = None if progress is None else (lambda done, _, before=before: progress(before + done, sum(expected)))
        maps.append(attribute(adapter, x, name, target, request.layer, step, cancelled))
        target = maps[0].target
    return maps


@router.post("/attributions", summary="Explain an image (data URL) or a 28x28 array with several attribution "
                                      "methods, side by side: each map's raw values, so maps can share a scale",
             responses={**errors(415), **STREAMED})
async def attributions(request: AttributionRequest, http: Request, state: AppState = Depends(app_state)):
    loaded, adapter, x, framing = await state.infer(lambda: explained_input(state, request))

    def work(progress, cancelled) -> dict:
        maps = explain_all(adapter, x, request, progress, cancelled)
        target = maps[0].target
        return {"model": loaded.ref.model, "version": loaded.ref.version, "target": target,
                "target_class": adapter.class_names[target], "framing": framing.as_dict(),
                "input": encode_tensor(x if x.shape[0] > 1 else x[0]),
                "range": {"min": min(float(m.values.min()) for m in maps),
                          "max": max(float(m.values.max()) for m in maps)},
                "maps": [{**ATTRIBUTIONS[m.method].describe(), "layer": m.layer, "seconds": round(m.seconds, 4),
                          "forward_passes": m.forward_passes, "values": encode_tensor(m.values),
                          **({"exact": encode_exact(m.values)} if request.exact else {})} for m in maps]}

    return await answer_with_progress(http, state, work)


@router.post("/attributions/arrays", summary="The same explanation as NumPy arrays: an .npz archive holding the "
                                             "model input and one float32 (H, W) map per method, by its name",
             responses={**errors(415), 200: {"content": {"application/octet-stream": {}},
                                             "description": "an .npz archive (numpy.load reads it)"}},
             response_class=Response)
async def attribution_arrays(request: AttributionRequest, state: AppState = Depends(app_state)):
    def work() -> bytes:
        _, adapter, x, _ = explained_input(state, request)
        maps = explain_all(adapter, x, request, None, None)
        arrays = {"input": x.numpy(), "target": np.array(maps[0].target),
                  **{m.method: m.values.numpy().astype("<f4") for m in maps}}
        archive = io.BytesIO()
        np.savez(archive, **arrays)
        return archive.getvalue()

    stem = f"{request.model}-{'-'.join(request.methods)}"
    return Response(await state.infer(work), media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{stem}.npz"'})


def check_inputs(state: AppState, request: MethodCheck):
    """The model a check is asked for, its adapter and the inputs it runs over; a layer no CAM can use refused."""
    loaded = state.models.load(state.models.resolve(request.model, request.version))
    adapter = loaded.checkpoint.adapter
    layer_for(adapter, request.method, request.layer)
    images = sanity_inputs(adapter, loaded.checkpoint.spec.dataset, request.images, state.settings.engine_settings())
    return loaded, adapter, images


def cached_check(state: AppState, key: tuple, check: Callable[..., dict]):
    """``check(progress, cancelled)`` run once per key on this worker: later asks get the kept answer."""
    def work(progress, cancelled) -> dict:
        kept = state.sanity_checks.get(key)
        if kept is not None:
            return {**kept, "cached": True}
        started = time.perf_counter()
        body = {**check(progress, cancelled), "seconds": round(time.perf_counter() - started, 3)}
        state.sanity_checks.put(key, body)
        return {**body, "cached": False}

    return work


@router.post("/sanity", summary="Sanity-check an attribution method: randomise the model's weights layer by layer "
                                "from the logits down and measure how much the maps change (Spearman of |maps|, "
                                "SSIM); or, with against_version, compare with a version trained on shuffled "
                                "labels. Cached per model version and method", responses=STREAMED)
async def sanity(request: SanityRequest, http: Request, state: AppState = Depends(app_state)):
    def prepare():
        loaded, adapter, images = check_inputs(state, request)
        shuffled = None
        if request.against_version is not None:
            shuffled = state.models.load(state.models.resolve(request.model, request.against_version))
            if shuffled.ref.id == loaded.ref.id:
                raise InputError("against_version is the version being checked: name one trained on shuffled labels")
            cost = 2 * len(images) * ATTRIBUTIONS[request.method].macs(adapter)
        else:
            cost = check_cost(adapter, request.method, len(images))
        refuse_above(cost, "check", "ask for fewer images or a method with fewer passes, or run convscope sanity")
        return loaded, adapter, images, shuffled

    loaded, adapter, images, shuffled = await state.infer(prepare)
    about = {"model": loaded.ref.model, "version": loaded.ref.version, "images": len(images)}

    def check(progress, cancelled) -> dict:
        if shuffled is None:
            found = cascading_randomisation(adapter, images, request.method, layer=request.layer, seed=request.seed,
                                            progress=progress, cancelled=cancelled)
            return {**about, "test": "model", **found.as_dict()}
        found = data_randomisation(adapter, shuffled.checkpoint.adapter, images, request.method, request.layer,
                                   progress, cancelled)
        return {**about, "test": "data", "against_version": shuffled.ref.version, **found.as_dict(),
                "against": f"{shuffled.ref.model} v{shuffled.ref.version}"}

    key = ("sanity", loaded.ref.id, request.method, request.layer, request.images, request.seed,
           shuffled.ref.id if shuffled else None)
    return await answer_with_progress(http, state, cached_check(state, key, check))


@router.post("/faithfulness", summary="Deletion and insertion curves of an attribution method over test inputs: "
                                      "the target probability as the pixels it ranks highest are removed or put "
                                      "back, against a random order; cached per model version and method",
             responses=STREAMED)
async def faithfulness(request: FaithfulnessRequest, http: Request, state: AppState = Depends(app_state)):
    def prepare():
        loaded, adapter, images = check_inputs(state, request)
        refuse_above(faithfulness_cost(adapter, request.method, len(images)), "check",
                     "ask for fewer images or a method with fewer passes")
        return loaded, adapter, images

    loaded, adapter, images = await state.infer(prepare)

    def check(progress, cancelled) -> dict:
        found = deletion_insertion(adapter, images, request.method, request.layer, seed=request.seed,
                                   progress=progress, cancelled=cancelled)
        return {"model": loaded.ref.model, "version": loaded.ref.version, **found.as_dict()}

    key = ("faithfulness", loaded.ref.id, request.method, request.layer, request.images, request.seed)
    return await answer_with_progress(http, state, cached_check(state, key, check))
