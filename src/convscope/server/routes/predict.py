from fastapi import APIRouter, Depends, Form
from fastapi.responses import JSONResponse

from ..inference import Options, response_body, run
from ..schemas import ExplainMethod, INT4_MAX, PredictRequest, PredictResponse, errors
from ..state import AppState, app_state
from ._inputs import UploadFields, json_image
from ._documented import DocumentedRoute

router = APIRouter(prefix="/predict", tags=["predict"], route_class=DocumentedRoute, responses=errors(404, 415))
DOC = {200: {"model": PredictResponse, "description": "prediction, probabilities, input, CAM, saliency and "
                                                      "activations; tensors in the compact encoding"}}


@router.post("", summary="Predict and explain a drawing (data URL) or a 28x28 array", responses=DOC,
             response_class=JSONResponse)
async def predict(request: PredictRequest, state: AppState = Depends(app_state)):
    def work() -> dict:
        image = json_image(request, state.settings)
        return response_body(run(state.models, image, request.options(request.model, request.version)),
                             request.cam_method)

    return JSONResponse(await state.infer(work))


@router.post("/upload", summary="Predict and explain an uploaded image (multipart)", responses=DOC,
             response_class=JSONResponse)
def predict_upload(fields: UploadFields = Depends(), target: int | None = Form(None, ge=0, le=INT4_MAX),
                   cam_method: ExplainMethod = Form("gradcam"), cam_layer: str | None = Form(None),
                   layers: str | None = Form(None, description="comma-separated layer names; default: all"),
                   state: AppState = Depends(app_state)):
    wanted = None if layers is None else [name.strip() for name in layers.split(",") if name.strip()]
    options = Options(fields.model, fields.version, target, cam_method, cam_layer or None, wanted)
    image = fields.image(state.settings)
    return JSONResponse(state.infer_blocking(lambda: response_body(run(state.models, image, options), cam_method)))
