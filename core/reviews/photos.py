"""A review photo made safe to publish: checked by its bytes, decoded, re-encoded without metadata.

Why re-encode: a phone photo carries EXIF, often the GPS position of the customer's home, and the
showcase is public. Decoding also proves the bytes are the image their magic says (a JPEG header on an
HTML page fails here even if it slipped past the markup check). Pillow refuses decompression bombs
(more than MAX_PIXELS pixels, read from the header) before anything is decoded.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

from core.errors import ValidationFailed
from core.reviews import rules

MAX_PIXELS = 40_000_000  # a 48 MP phone camera is resized by the phone's share sheet; more is an attack
MAX_SIDE = 2048  # shown on a phone: a larger side is wasted bytes


def clean_photo(data: bytes) -> tuple[bytes, str]:
    """(re-encoded bytes, content type) or ValidationFailed with the Korean reason."""
    kind = rules.check_photo(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if rules.PHOTO_TYPES.get(kind) != image.format:
                    raise ValidationFailed(rules.PHOTO_REFUSED)
                if image.width * image.height > MAX_PIXELS:  # read from the header, before decoding
                    raise ValidationFailed(rules.PHOTO_REFUSED)
                image.load()
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((MAX_SIDE, MAX_SIDE))
                out = io.BytesIO()
                if kind == "image/jpeg":
                    upright.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
                elif kind == "image/png":
                    upright.save(out, "PNG", optimize=True)
                else:
                    upright.save(out, "WEBP", quality=85)
    except ValidationFailed:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise ValidationFailed(rules.PHOTO_REFUSED) from exc
    return out.getvalue(), kind
