"""Sample photos shipped with convscope, for the image models as MNIST samples are for the digit models. Each is
free to use: taken from the scikit-image 0.26.0 and matplotlib 3.11.2 wheels, with their licences below."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InputError


@dataclass(frozen=True)
class Photo:
    """A sample photo shipped with convscope: ``path`` to the file, with its title, credit and licence."""

    name: str
    file_name: str
    title: str
    credit: str
    licence: str

    @property
    def path(self) -> Path:
        return Path(str(resources.files("convscope.data") / "photos" / self.file_name))

    def as_dict(self) -> dict:
        return {"name": self.name, "file_name": self.file_name, "title": self.title, "credit": self.credit,
                "licence": self.licence}


PHOTOS: dict[str, Photo] = {photo.name: photo for photo in (
    Photo("coffee", "coffee.png", "A cup of coffee", "Rachel Michetti; courtesy of Pikolo Espresso Bar "
          "(scikit-image)", "CC0"),
    Photo("chelsea", "chelsea.png", "Chelsea the cat", "Stefan van der Walt (scikit-image)", "CC0"),
    Photo("astronaut", "astronaut.png", "Eileen Collins, NASA astronaut", "NASA (scikit-image)", "public domain"),
    Photo("grace_hopper", "grace_hopper.jpg", "Rear Admiral Grace Hopper", "U.S. Navy (matplotlib)",
          "public domain"),
)}


def get_photo(name: str) -> Photo:
    """The sample photo called ``name`` ("coffee", "chelsea", "astronaut", "grace_hopper")."""
    try:
        return PHOTOS[name]
    except KeyError:
        raise InputError(f"unknown sample photo {name!r}; choose from {', '.join(PHOTOS)}") from None
