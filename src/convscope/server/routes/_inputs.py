"""Reading a request's image: JSON (data URL or pixels) or a multipart upload, and the upload's form fields."""

from __future__ import annotations

from fastapi import File, Form, UploadFile

from ..errors import ApiError
from ..inputs import UserImage, from_bytes, from_data_url, from_pixels
from ..schemas import INT4_MAX, InputFields
from ..settings import ServerSettings


def json_image(request: InputFields, settings: ServerSettings) -> UserImage:
    if request.image is not None:
        return from_data_url(request.image, settings.max_image_pixels, request.preprocess)
    return from_pixels(request.pixels, request.preprocess)


class UploadFields:
    """The form fields of a multipart upload (``file`` plus the same options as the JSON body)."""

    def __init__(self, file: UploadFile = File(..., description="a PNG, JPEG or WebP image"),
                 model: str = Form("mnist_cnn"), version: int | None = Form(None, ge=1, le=INT4_MAX),
                 preprocess: bool = Form(True)):
        self.file, self.model, self.version, self.preprocess = file, model, version, preprocess

    def image(self, settings: ServerSettings) -> UserImage:
        data = self.file.file.read(settings.max_body_bytes + 1)
        if not data:
            raise ApiError("the uploaded file is empty", 422)
        return from_bytes(data, "upload", settings.max_image_pixels, self.preprocess)
