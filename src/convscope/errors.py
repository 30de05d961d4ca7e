"""Exceptions a user can cause. The CLI (and later the server) turn these into one-line messages."""


class ConvscopeError(Exception):
    """Base class for errors caused by input, files or environment rather than by a bug."""


class DataError(ConvscopeError):
    """A dataset file is missing, truncated or corrupt, or a download failed."""


class ModelError(ConvscopeError):
    """Unknown model or layer, or a checkpoint that does not match its architecture."""


class InputError(ConvscopeError):
    """An image or array that cannot be turned into model input (for example an empty drawing)."""


class UnreadableImageError(InputError):
    """Bytes that are not an image in a supported format."""


class ImageTooLargeError(InputError):
    """An image whose pixel count, read from its header, is over the limit; its pixels were never decoded."""
