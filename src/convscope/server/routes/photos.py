from fastapi import APIRouter
from fastapi.responses import FileResponse

from ...data.photos import PHOTOS, get_photo
from ..errors import NotFound
from ._documented import DocumentedRoute

router = APIRouter(prefix="/photos", tags=["samples"], route_class=DocumentedRoute)
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg"}


@router.get("", summary="The sample photos that ship with convscope, for the image models, with their licences")
def list_photos() -> list[dict]:
    return [{**photo.as_dict(), "url": f"/api/photos/{photo.name}"} for photo in PHOTOS.values()]


@router.get("/{name}", summary="One sample photo's image", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
def get_photo_file(name: str) -> FileResponse:
    if name not in PHOTOS:
        raise NotFound(f"no sample photo {name!r}; photos: {', '.join(PHOTOS)}")
    photo = get_photo(name)
    return FileResponse(photo.path, media_type=MEDIA_TYPES[photo.path.suffix],
                        headers={"cache-control": "public, max-age=86400"})
