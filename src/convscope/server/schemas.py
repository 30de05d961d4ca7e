"""Request bodies (validated by FastAPI: bad fields get a 422 in the common error shape) and the documented
shapes of the larger responses."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..training.config import FineTuneConfig, TrainConfig
from ..inspect import ATTRIBUTIONS, METHODS
from .inference import Options

ExplainMethod = Literal[METHODS]  # type: ignore[valid-type]
AttributionName = Literal[tuple(ATTRIBUTIONS)]  # type: ignore[valid-type]


# The database's integers are 32-bit (PostgreSQL int4): anything that may reach a column stays inside them.
INT4_MAX = 2**31 - 1
# Path parameters naming stored records: an id beyond the column's range is a 422, not a database error.
RecordId = Annotated[int, Path(ge=1, le=INT4_MAX)]


class Strict(BaseModel):
    # A misspelt field is an error, not silently ignored; NaN and infinities are not numbers anyone means; and JSON
    # types are taken as they are (strict): true is not the number 1, "5" is not 5, 1 is not true.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class ImageFields(Strict):
    """Exactly one of ``image`` and ``pixels``."""

    image: str | None = Field(None, description="a canvas data URL: data:image/png|jpeg|webp;base64,...")
    pixels: list[list[float]] | None = Field(
        None, description="HxW grey levels 0-255; for the MNIST models 28x28, light ink on dark")
    preprocess: bool | None = Field(
        None, description="the model's preprocessing (MNIST: crop, scale and centre); default true for images, "
                          "false for pixels")

    @model_validator(mode="after")
    def _one_input(self):
        if (self.image is None) == (self.pixels is None):
            raise ValueError("give exactly one of image (a data URL) and pixels (a 28x28 array)")
        return self


class ModelChoice(Strict):
    model: str = "mnist_cnn"
    version: int | None = Field(None, ge=1, le=INT4_MAX, description="default: the model's active version")


class EvaluationRequest(ModelChoice):
    dataset: str = Field("mnist:test", max_length=200, description="a name from GET /api/datasets: mnist:test, "
                                                                    "mnist:train or folder:<name>")
    misclassified: int = Field(100, ge=0, le=500, description="how many mistakes the report keeps, most confident "
                                                             "first")


class InputFields(ImageFields, ModelChoice):
    """An image and the model (and version) to run it through."""


class CompareRequest(ImageFields):
    models: list[ModelChoice] = Field(min_length=2, max_length=4, description="2-4 models (or versions) to run "
                                                                              "the image through")
    top: int = Field(5, ge=1, le=20, description="how many classes to list per model")


class ExplainFields(BaseModel):
    target: int | None = Field(None, ge=0, le=INT4_MAX, description="class to explain; default: the predicted class")
    cam_method: ExplainMethod = "gradcam"
    cam_layer: str | None = Field(None, description="a layer with a spatial (C, H, W) output; default: the "
                                                    "model's (the last conv block's activation)")
    layers: list[str] | None = Field(None, description="layers whose activations to return; default: all of a "
                                                        "small model's, none of a big one's; [] for none")

    def options(self, model: str, version: int | None) -> Options:
        return Options(model=model, version=version, target=self.target, cam_method=self.cam_method,
                       cam_layer=self.cam_layer, layers=self.layers)


class PredictRequest(InputFields, ExplainFields):
    pass


class SaveRequest(InputFields):
    pass


class AttributionRequest(InputFields):
    methods: list[AttributionName] = Field(min_length=1, max_length=len(ATTRIBUTIONS),
                                           description="the methods to explain with, side by side")
    target: int | None = Field(None, ge=0, le=INT4_MAX, description="class to explain; default: the predicted class")
    layer: str | None = Field(None, description="where the CAM methods look: a layer with a spatial (C, H, W) "
                                                "output; default: the model's")
    exact: bool = Field(False, description="each map's values as float32 too (`exact`), for exports: the "
                                           "`values` are 8-bit levels")

    @model_validator(mode="after")
    def _each_once(self):
        if len(set(self.methods)) != len(self.methods):
            raise ValueError("name each method once")
        return self


class MethodCheck(ModelChoice):
    """A check of one attribution method over test inputs."""

    method: AttributionName
    layer: str | None = Field(None, description="where a CAM method looks; default: the model's")
    images: int = Field(8, ge=1, le=32, description="how many inputs to average over: MNIST test digits for a digit "
                                                    "model, the sample photos (four) for the others")
    seed: int = Field(0, ge=0, le=INT4_MAX, description="seed of the random weights (sanity), of the random pixel "
                                                        "order the curves are compared with (faithfulness)")


class SanityRequest(MethodCheck):
    against_version: int | None = Field(None, ge=1, le=INT4_MAX,
                                        description="the data randomisation test instead: compare the maps with "
                                                    "this version's, trained on shuffled labels")


class FaithfulnessRequest(MethodCheck):
    pass


class FeatureTopRequest(ModelChoice):
    layer: str = Field(max_length=200, description="a layer of the model (GET /api/models/{name}/architecture)")
    channel: int = Field(ge=0, le=INT4_MAX)
    k: int = Field(9, ge=1, le=32, description="how many images")
    dataset: str | None = Field(None, max_length=200, description="mnist:test, photos (the four sample photos) or "
                                                                  "folder:<name>; default: mnist:test for a digit "
                                                                  "model, photos for the others")


class VisualizeRequest(ModelChoice):
    """What to drive: a channel of ``layer`` (with ``position``: one neuron of it), or a class ``logit``."""

    layer: str | None = Field(None, max_length=200)
    channel: int | None = Field(None, ge=0, le=INT4_MAX)
    position: list[Annotated[int, Field(ge=0, le=INT4_MAX)]] | None = Field(
        None, min_length=2, max_length=2, description="[row, column] of one neuron; default: the channel's mean")
    logit: int | None = Field(None, ge=0, le=INT4_MAX, description="a class index instead of a layer's channel")
    steps: int = Field(256, ge=1, le=2048)
    size: int | None = Field(None, ge=8, le=512, description="side of the image; default: the model's input")
    parameterisation: Literal["fourier", "pixels"] = "fourier"
    decorrelate: bool = True
    batch: int = Field(1, ge=1, le=8, description="images made together")
    diversity: float = Field(0.0, ge=0, le=1000, description="how hard the images are pushed apart (batch > 1)")
    seed: int = Field(0, ge=0, le=INT4_MAX)
    only_cached: bool = Field(False, description="answer only with one made before (no images when there is none)")

    @model_validator(mode="after")
    def _one_target(self):
        if (self.logit is None) == (self.layer is None or self.channel is None):
            raise ValueError("name either a layer and a channel, or a logit")
        if self.position is not None and self.logit is not None:
            raise ValueError("a position belongs to a layer's channel, not to a logit")
        return self

    def target(self):
        from ..inspect.features import Target
        if self.logit is not None:
            return Target.logit(self.logit)
        if self.position is not None:
            return Target.neuron(self.layer, self.channel, tuple(self.position))
        return Target.channel(self.layer, self.channel)


class RerunRequest(Strict, ExplainFields):
    version: int | None = Field(None, ge=1, le=INT4_MAX, description="default: the model's active version")


class EncodedTensor(BaseModel):
    shape: list[int]
    min: float
    max: float
    encoding: Literal["uint8-zlib-base64"]
    data: str


class DerivedTensor(BaseModel):
    shape: list[int]
    encoding: Literal["relu", "reshape"]
    of: str = Field(description="the layer (in the same answer) this one is computed from")


class CamOut(BaseModel):
    method: str
    layer: str | None
    map: EncodedTensor
    blank: str | None = Field(None, description="why the map is all zero (in words); null when it is not")


class UnusualInput(BaseModel):
    reason: str = Field(description="what makes the input unlike the model's training data, in words")


class LayerOut(BaseModel):
    name: str
    kind: str
    shape: list[int]
    parents: list[str] = Field(description="the layers it reads from (\"input\": the model input)")
    activation: EncodedTensor | DerivedTensor


class FramingOut(BaseModel):
    source: list[float] = Field(description="x0, y0, x1, y1: the rectangle of the input image that was used")
    field: list[int] = Field(description="left, top, width, height: where it lies in the model input")


class PredictResponse(BaseModel):
    model: str
    version: int
    predicted: int
    predicted_class: str
    confidence: float
    probabilities: list[float]
    target: int
    target_class: str
    input: EncodedTensor
    framing: FramingOut
    cam: CamOut | None
    saliency: EncodedTensor | None = Field(description="|d score / d pixel|: always for the small models; for big "
                                                       "ones when cam_method is saliency")
    layers: list[LayerOut]
    unusual_input: UnusualInput | None = Field(description="set when the input looks unlike the training data (a "
                                                           "speck, a scribble, no class standing out): then even a "
                                                           "confident answer deserves no trust")


class ActivateRequest(Strict):
    version: int = Field(ge=1, le=INT4_MAX)


TRAIN_DEFAULTS = TrainConfig()  # the engine's defaults, so a run started from the UI is the CLI's `convscope train`


class JobRequest(Strict):
    model: str = TRAIN_DEFAULTS.model
    epochs: float = Field(TRAIN_DEFAULTS.epochs, gt=0, le=100)
    batch_size: int = Field(TRAIN_DEFAULTS.batch_size, ge=1, le=8192)
    lr: float = Field(TRAIN_DEFAULTS.lr, gt=0, le=10)
    validation_split: float = Field(TRAIN_DEFAULTS.validation_split, ge=0, lt=1)
    optimizer: Literal["adam", "adamw", "sgd"] = TRAIN_DEFAULTS.optimizer
    schedule: Literal["onecycle", "cosine", "constant"] = TRAIN_DEFAULTS.schedule
    weight_decay: float = Field(TRAIN_DEFAULTS.weight_decay, ge=0)
    augment: bool = TRAIN_DEFAULTS.augment
    shuffle_labels: bool = Field(TRAIN_DEFAULTS.shuffle_labels, description="train on shuffled labels: a model for "
                                 "the data randomisation sanity check")
    target_accuracy: float | None = Field(TRAIN_DEFAULTS.target_accuracy, gt=0, le=1)
    seed: int = Field(TRAIN_DEFAULTS.seed, ge=0, le=INT4_MAX)


FINETUNE_DEFAULTS = FineTuneConfig()


class FineTuneRequest(Strict):
    base: str = Field(FINETUNE_DEFAULTS.base, max_length=64, description="the model whose features to start from")
    dataset: str = Field(max_length=200, description="a folder dataset from GET /api/datasets: folder:<name>")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$",
                      description="the new model's name")
    train_blocks: int = Field(FINETUNE_DEFAULTS.train_blocks, ge=0, le=100,
                              description="0: the base frozen, its features computed once; N: its last N blocks "
                                          "learn too")
    epochs: int = Field(FINETUNE_DEFAULTS.epochs, ge=1, le=500, description="at most (early stopping)")
    patience: int = Field(FINETUNE_DEFAULTS.patience, ge=1, le=500)
    batch_size: int = Field(FINETUNE_DEFAULTS.batch_size, ge=1, le=1024)
    lr: float = Field(FINETUNE_DEFAULTS.lr, gt=0, le=10)
    validation_split: float = Field(FINETUNE_DEFAULTS.validation_split, gt=0, lt=1)
    augment: bool = FINETUNE_DEFAULTS.augment
    augment_views: int = Field(FINETUNE_DEFAULTS.augment_views, ge=0, le=16)
    seed: int = Field(FINETUNE_DEFAULTS.seed, ge=0, le=INT4_MAX)


class ReportRequest(Strict):
    correct_label: int | None = Field(ge=0, le=INT4_MAX, description="a class index of the prediction's model, not "
                                      "the predicted one; null: none of its classes (then a reason is required)")
    reason: str = Field("", max_length=2000, pattern=r"^[^\x00]*$", description="plain text, without NUL characters")


class ResolveRequest(Strict):
    resolved: bool = True


class FieldError(BaseModel):
    field: str = Field(description="where, e.g. body.target or query.limit")
    message: str


class ErrorDetail(BaseModel):
    status: int
    code: str = Field(description="not_found, invalid_input, conflict, ...")
    message: str = Field(description="what went wrong and, where it can, what to do")
    details: list[FieldError] | None = Field(None, description="one entry per invalid field (422 only)")


class ErrorBody(BaseModel):
    """The one shape of every error answer."""

    error: ErrorDetail


ERROR_MEANINGS = {
    401: "an admin action without the admin token (on a server that is not on loopback)",
    403: "a wrong admin token, or a change asked by another site's page",
    404: "no such model, version, record or photo (the message says which)",
    409: "in conflict with the current state: a job already running, an ended job, weights that ship in a package",
    413: "a body over the size limit, or an image over the pixel limit (read from its header)",
    415: "not a PNG, JPEG or WebP image",
    422: "invalid input: the message says what, and details which field",
    500: "a bug: the server logged the details",
    503: "data the server needs is missing and cannot be downloaded (MNIST without a network)",
    507: "the store of saved images is full (CONVSCOPE_MAX_STORED_IMAGE_BYTES)",
}


def errors(*statuses: int, **described: str) -> dict:
    """OpenAPI ``responses`` for error answers in the one error shape; ``described``: ``e404="..."`` to say more
    than the general meaning."""
    meanings = {**{status: ERROR_MEANINGS[status] for status in statuses},
                **{int(key[1:]): description for key, description in described.items()}}
    # JSON whatever the route's own answers are (a stream's errors come before the stream)
    as_json = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {status: {"model": ErrorBody, "description": meaning, "content": as_json}
            for status, meaning in meanings.items()}

