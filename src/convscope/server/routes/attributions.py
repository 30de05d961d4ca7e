"""Attribution methods side by side (``POST /api/attributions``), and the sanity check of a method against the
model's weights (``POST /api/sanity``), on the inference thread like every model computation."""

from __future__ import annotations

import time
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ...inspect.attribution import ATTRIBUTIONS, attribute
from ...errors import InputError
from ...inspect.attribution.sanity import cascading_randomisation, check_cost, sanity_inputs
from ..encoding import encode_tensor
from ..schemas import AttributionRequest, SanityRequest, errors
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


@router.post("/attributions", summary="Explain an image (data URL) or a 28x28 array with several attribution "
                                      "methods, side by side: each map's raw values, so maps can share a scale",
             responses=errors(415), response_class=JSONResponse)
async def attributions(request: AttributionRequest, state: AppState = Depends(app_state)):
    def work() -> dict:
        image = json_image(request, state.settings)
        loaded = state.models.load(state.models.resolve(request.model, request.version))
        adapter = loaded.checkpoint.adapter
        refuse_above(sum(ATTRIBUTIONS[name].macs(adapter) for name in request.methods), "request",
                     "ask for fewer or cheaper methods, or run convscope explain --attributions")
        x, framing = image.model_input(adapter.preprocessing)
        maps = [attribute(adapter, x, request.methods[0], request.target, request.layer)]
        target = maps[0].target  # the predicted class, found once, when none was asked for
        maps += [attribute(adapter, x, name, target, request.layer) for name in request.methods[1:]]
        return {"model": loaded.ref.model, "version": loaded.ref.version, "target": target,
                "target_class": adapter.class_names[target], "framing": framing.as_dict(),
                "input": encode_tensor(x if x.shape[0] > 1 else x[0]),
                "range": {"min": min(float(m.values.min()) for m in maps),
                          "max": max(float(m.values.max()) for m in maps)},
                "maps": [{**ATTRIBUTIONS[m.method].describe(), "layer": m.layer, "seconds": round(m.seconds, 4),
                          "forward_passes": m.forward_passes, "values": encode_tensor(m.values)} for m in maps]}

    return JSONResponse(await state.infer(work))


@router.post("/sanity", summary="Sanity-check an attribution method against the model's weights: randomise them "
                                "layer by layer from the logits down and measure how much the maps change "
                                "(Spearman of |maps|, SSIM); cached per model version and method",
             response_class=JSONResponse)
async def sanity(request: SanityRequest, state: AppState = Depends(app_state)):
    def work() -> dict:
        loaded = state.models.load(state.models.resolve(request.model, request.version))
        key = (loaded.ref.id, request.method, request.layer, request.images, request.seed)
        cached = state.sanity_checks.get(key)
        if cached is not None:
            return {**cached, "cached": True}
        adapter = loaded.checkpoint.adapter
        images = sanity_inputs(adapter, loaded.checkpoint.spec.dataset, request.images,
                               state.settings.engine_settings())
        refuse_above(check_cost(adapter, request.method, len(images)), "check",
                     "ask for fewer images or a method with fewer passes, or run convscope sanity")
        started = time.perf_counter()
        check = cascading_randomisation(adapter, images, request.method, layer=request.layer, seed=request.seed)
        body = {"model": loaded.ref.model, "version": loaded.ref.version, "images": len(images),
                "seconds": round(time.perf_counter() - started, 3), **check.as_dict()}
        state.sanity_checks.put(key, body)
        return {**body, "cached": False}

    return JSONResponse(await state.infer(work))
