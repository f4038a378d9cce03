"""Image metadata from the file header alone: format, size, mode, EXIF orientation, sha256."""

import hashlib
import io
import warnings

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from catalog.errors import ImageTooLarge, UnreadableImage
from catalog.models import ImageFormat, ImageMeta

# Pillow's own bomb guard is a process-wide constant; the catalog enforces its own,
# configurable max_pixels below instead, so disable Pillow's to avoid two limits.
Image.MAX_IMAGE_PIXELS = None

PILLOW_FORMATS: dict[str, ImageFormat] = {
    "JPEG": "jpeg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tiff",
    "BMP": "bmp",
}
EXIF_ORIENTATION_TAG = 0x0112
_SUPPORTED = ", ".join(PILLOW_FORMATS.values())


def sha256_of(data: bytes) -> str:
    """The hex SHA-256 of the bytes."""
    return hashlib.sha256(data).hexdigest()


def read_metadata(data: bytes, *, max_pixels: int) -> ImageMeta:
    """Read format, displayed size, mode and EXIF orientation from the header; never decode."""
    if not data:
        raise UnreadableImage("empty image: zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(PILLOW_FORMATS))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image has too many pixels: {exc}") from None
    except UnidentifiedImageError:
        raise UnreadableImage(f"not an image (supported formats: {_SUPPORTED})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImage(f"corrupt or truncated image header: {exc}") from None
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise UnreadableImage(f"image header declares an empty size {width}x{height}")
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}"
            )
        orientation = _exif_orientation(image)
        if orientation >= 5:  # 5-8 are transposed: the photo is seen rotated by 90 degrees
            width, height = height, width
        return ImageMeta(
            sha256=sha256_of(data),
            format=PILLOW_FORMATS[str(image.format)],
            mode=image.mode,
            width=width,
            height=height,
            exif_orientation=orientation,
            bytes=len(data),
        )


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8), 1 when absent or nonsense."""
    # PngImageFile.getexif() loads the whole image when the eXIf chunk follows the
    # pixel data; only trust what the header already gave us.
    if isinstance(image, PngImagePlugin.PngImageFile) and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not reject an otherwise fine photo
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
