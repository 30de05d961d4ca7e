"""One image through 2-4 models side by side: each one's top classes, its CAM at its default layer, its time and
size, and whether they agree."""

import time

from fastapi import APIRouter, Depends

from ...errors import ConvscopeError
from ..encoding import encode_tensor
from ..errors import ApiError
from ..inference import Options, prediction_summary, run
from ..schemas import CompareRequest, errors
from ..state import AppState, app_state
from ._inputs import json_image
from ._documented import DocumentedRoute

router = APIRouter(prefix="/compare", tags=["predict"], route_class=DocumentedRoute, responses=errors(415))


def _one(state: AppState, image, choice, top: int) -> dict:
    state.models.load(state.models.resolve(choice.model, choice.version))  # loading is not part of the time
    started = time.perf_counter()
    result = run(state.models, image, Options(choice.model, choice.version, layers=[]))
    elapsed_ms = (time.perf_counter() - started) * 1000
    ins, adapter = result.inspection, result.loaded.checkpoint.adapter
    best = ins.probabilities.topk(min(top, len(ins.probabilities)))
    summary = prediction_summary(result)
    del summary["probabilities"]  # the top classes say it in a few entries, not a thousand
    return {
        **summary,
        "top": [{"index": int(i), "class": adapter.class_names[int(i)], "probability": round(float(p), 6)}
                for p, i in zip(best.values, best.indices, strict=True)],
        "time_ms": round(elapsed_ms, 2),
        "parameters": sum(p.numel() for p in adapter.module.parameters()),
        "macs": sum(tap.macs for tap in adapter.graph.taps),
        "input": encode_tensor(ins.input if ins.input.shape[0] > 1 else ins.input[0]),
        "framing": result.framing.as_dict(),
        "cam": None if ins.cam is None else {"method": ins.cam_method, "layer": ins.cam_layer,
                                             "map": encode_tensor(ins.cam)},
    }


@router.post("", summary="One image through 2-4 models side by side",
             responses={200: {"description": "per model (in the order asked): top classes, the CAM at its default "
                                             "layer, inference time, parameters and MACs, or the error that model "
                                             "gave; ``agree``: whether every answering model's top class is the "
                                             "same"},
                        **errors(e422="fewer than 2 or more than 4 models, or an unreadable image")})
async def compare(request: CompareRequest, state: AppState = Depends(app_state)) -> dict:
    """A model that cannot answer (unknown, weights not downloaded, an input it cannot take) gets an ``error``
    in its place and the others still answer. Times are each model's inspection as POST /api/predict runs it
    (preprocessing, forward, the CAM's backward; and saliency for the small models), measured on the server one
    after another, loading excluded."""

    def work() -> list[dict]:
        image = json_image(request, state.settings)
        answers = []
        for choice in request.models:
            try:
                answers.append(_one(state, image, choice, request.top))
            except (ApiError, ConvscopeError) as e:
                answers.append({"model": choice.model, "version": choice.version,
                                "error": getattr(e, "message", None) or str(e)})
        return answers

    answers = await state.infer(work)
    classes = {answer["predicted_class"] for answer in answers if "error" not in answer}
    return {"models": answers, "agree": len(classes) == 1 and all("error" not in a for a in answers)}
