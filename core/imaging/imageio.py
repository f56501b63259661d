"""Image decoding for viaseg: every image becomes an ``HxWx3 uint8 RGB`` array, oriented as a browser shows it.

VIA draws its regions on the image *as the browser displays it*, and browsers apply the EXIF orientation of a
JPEG. So do we: a JPEG whose EXIF says "rotate 90" is decoded rotated, and its size is reported rotated.

Conversions (OpenCV decodes; nothing else is needed):

* 16-bit images are scaled to 8 bits (``v * 255 / 65535`` rounded); float images are taken as 0..1 (clipped).
* gray (and gray + alpha) becomes three equal channels; palette PNGs are expanded by the decoder.
* an alpha channel is composited over **white** (what a page with a white background shows), then dropped.
* EXIF orientation (tag 0x0112) is read from the JPEG APP1 segment or the PNG ``eXIf`` chunk and applied
  here (OpenCV's own orientation handling is switched off, so every path behaves the same).

``max_side``: the caller needs an image whose longer side is at least ``max_side`` (e.g. a network input of
512 px). For JPEG we then let libjpeg decode at 1/2, 1/4 or 1/8 scale, the smallest that still gives
``>= max_side`` — several times faster than decoding a 12-MP photo in full. The result may be larger than
``max_side``; the caller resizes. Other formats decode at full size.

Errors: :class:`~viaseg.core.base.errors.ImageReadError` (file name + problem) for a missing, empty, unreadable,
truncated, corrupt or non-image file and for images over :data:`MAX_PIXELS`. Nothing else escapes.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import cv2
import numpy as np

from ..base.errors import ImageReadError

IMAGE_EXTS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")

MAX_PIXELS = 300_000_000  # 300 MP: about 1 GB as RGB; larger images are refused with a clear message

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIG = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------- header parsing


def _sniff(head: bytes) -> str | None:
    """Format name from the magic bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(_PNG_SIG):
        return "png"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _exif_orientation(tiff: bytes) -> int:
    """Orientation (1..8) from a TIFF-structured EXIF block; 1 when absent or malformed."""
    if len(tiff) < 8:
        return 1
    if tiff[:2] == b"II":
        e = "<"
    elif tiff[:2] == b"MM":
        e = ">"
    else:
        return 1
    try:
        (ifd,) = struct.unpack(e + "I", tiff[4:8])
        (n,) = struct.unpack(e + "H", tiff[ifd : ifd + 2])
        for i in range(n):
            off = ifd + 2 + 12 * i
            tag, typ, _count = struct.unpack(e + "HHI", tiff[off : off + 8])
            if tag == 0x0112:
                if typ == 3:  # SHORT, stored left-justified in the 4-byte value field
                    (val,) = struct.unpack(e + "H", tiff[off + 8 : off + 10])
                elif typ == 4:  # LONG (non-standard but seen)
                    (val,) = struct.unpack(e + "I", tiff[off + 8 : off + 12])
                else:
                    return 1
                return val if 1 <= val <= 8 else 1
    except struct.error:
        return 1
    return 1


class _Header:
    __slots__ = ("fmt", "width", "height", "orientation", "sos_offset")

    def __init__(self, fmt=None, width=None, height=None, orientation=1, sos_offset=None):
        self.fmt = fmt
        self.width = width
        self.height = height
        self.orientation = orientation
        self.sos_offset = sos_offset  # JPEG: file offset of the first start-of-scan marker


def _parse_jpeg(f) -> _Header:
    """Walk JPEG markers up to the first SOS: size from SOF, orientation from APP1/Exif."""
    h = _Header("jpeg")
    f.seek(2)
    while True:
        b = f.read(1)
        if not b:
            return h
        if b != b"\xff":
            return h  # garbage between segments: leave it to the decoder
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            return h
        m = marker[0]
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            continue  # no length
        if m == 0xD9:
            return h
        raw_len = f.read(2)
        if len(raw_len) < 2:
            return h
        (seglen,) = struct.unpack(">H", raw_len)
        if seglen < 2:
            return h
        if m == 0xDA:
            h.sos_offset = f.tell() - 4
            return h
        if m in _JPEG_SOF:
            data = f.read(5)
            if len(data) == 5:
                _prec, hh, ww = struct.unpack(">BHH", data)
                h.height, h.width = hh, ww
            f.seek(seglen - 2 - len(data), os.SEEK_CUR)
        elif m == 0xE1 and h.orientation == 1:
            data = f.read(seglen - 2)
            if data.startswith(b"Exif\x00\x00"):
                h.orientation = _exif_orientation(data[6:])
        else:
            f.seek(seglen - 2, os.SEEK_CUR)


def _parse_png(f) -> _Header:
    """IHDR size, and orientation from an ``eXIf`` chunk before the first IDAT."""
    h = _Header("png")
    f.seek(8)
    while True:
        head = f.read(8)
        if len(head) < 8:
            return h
        length, ctype = struct.unpack(">I4s", head)
        if ctype == b"IHDR":
            data = f.read(8)
            if len(data) == 8:
                h.width, h.height = struct.unpack(">II", data)
            f.seek(length - len(data) + 4, os.SEEK_CUR)
        elif ctype == b"eXIf":
            h.orientation = _exif_orientation(f.read(length))
            f.seek(4, os.SEEK_CUR)
        elif ctype in (b"IDAT", b"IEND"):
            return h
        else:
            f.seek(length + 4, os.SEEK_CUR)


def _parse_other(head: bytes, fmt: str | None) -> _Header:
    h = _Header(fmt)
    try:
        if fmt == "bmp" and len(head) >= 26:
            w, hh = struct.unpack("<ii", head[18:26])
            h.width, h.height = w, abs(hh)
        elif fmt == "gif" and len(head) >= 10:
            h.width, h.height = struct.unpack("<HH", head[6:10])
    except struct.error:
        pass
    return h


def _read_header(path: Path) -> _Header:
    with open(path, "rb") as f:
        head = f.read(32)
        fmt = _sniff(head)
        try:
            if fmt == "jpeg":
                return _parse_jpeg(f)
            if fmt == "png":
                return _parse_png(f)
        except (OSError, struct.error, ValueError):
            return _Header(fmt)
        return _parse_other(head, fmt)


# ---------------------------------------------------------------------------------------------- decoding


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a stored image into its displayed orientation (EXIF 1..8)."""
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:  # transpose
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:  # transverse
        return cv2.rotate(cv2.transpose(img), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if img.dtype in (np.float32, np.float64, np.float16):
        f = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(f, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img.dtype == np.int8:
        return (img.astype(np.int16) + 128).astype(np.uint8)
    if img.dtype == np.int16:
        return ((img.astype(np.int32) + 32768) >> 8).astype(np.uint8)
    raise ValueError(f"unsupported pixel type {img.dtype}")


def _to_rgb(img: np.ndarray) -> np.ndarray:
    """Decoder output (BGR order, any channel count, any depth) -> HxWx3 uint8 RGB."""
    if img.ndim == 3 and img.shape[2] in (2, 4):
        alpha = img[:, :, -1]
        color = img[:, :, :-1]
        if alpha.dtype == np.uint8:
            a = alpha.astype(np.float32) / 255.0
        elif alpha.dtype == np.uint16:
            a = alpha.astype(np.float32) / 65535.0
        else:
            a = np.clip(np.nan_to_num(alpha.astype(np.float32)), 0.0, 1.0)
        color = _to_uint8(color)
        if a.min() < 1.0:  # composite over white
            c = color.astype(np.float32)
            c = c * a[:, :, None] + 255.0 * (1.0 - a[:, :, None])
            color = (c + 0.5).astype(np.uint8)
        img = color
    else:
        img = _to_uint8(img)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    raise ValueError(f"unsupported channel count {img.shape[2]}")


def _reduction(w: int, h: int, max_side: int | None) -> int:
    """Largest JPEG scale-down factor (1, 2, 4, 8) keeping the longer side >= max_side."""
    if not max_side or max_side <= 0:
        return 1
    longer = max(w, h)
    for f in (8, 4, 2):
        if -(-longer // f) >= max_side:  # libjpeg rounds the scaled size up
            return f
    return 1


_COLOR_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def read_image(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Decode ``path`` to an ``HxWx3 uint8`` RGB array in display orientation. See the module docstring."""
    path = Path(path)
    return _guard(path, lambda: _read_image(path, max_side))


def decode_image(data: bytes, name: str | Path = "<memory>", max_side: int | None = None) -> np.ndarray:
    """Like :func:`read_image` for file content already in memory (``name`` only labels errors)."""
    return _guard(Path(name), lambda: _decode(Path(name), bytes(data), max_side))


def _guard(path: Path, fn) -> np.ndarray:
    try:
        return fn()
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a folder, not an image file") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode this image") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from None
    except cv2.error as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "decoder error"
        raise ImageReadError(path, f"corrupt or unsupported image ({msg})") from None
    except Exception as exc:  # contract: ImageReadError only
        raise ImageReadError(path, f"cannot decode image ({type(exc).__name__}: {exc})") from None


def _check_pixels(path: Path, w, h) -> None:
    if w is not None and h is not None:
        if w <= 0 or h <= 0:
            raise ImageReadError(path, f"invalid image size {w}x{h} in the file header")
        if w * h > MAX_PIXELS:
            raise ImageReadError(
                path,
                f"image too large: {w}x{h} = {w * h / 1e6:.0f} megapixels "
                f"(the limit is {MAX_PIXELS / 1e6:.0f} megapixels)",
            )


def _read_image(path: Path, max_side: int | None) -> np.ndarray:
    if path.is_dir():
        raise IsADirectoryError
    return _decode(path, path.read_bytes(), max_side)


def _decode(path: Path, data: bytes, max_side: int | None) -> np.ndarray:
    if not data:
        raise ImageReadError(path, "empty file (0 bytes)")
    fmt = _sniff(data[:32])
    header = _Header(fmt)
    if fmt in ("jpeg", "png"):
        with io.BytesIO(data) as f:
            try:
                header = _parse_jpeg(f) if fmt == "jpeg" else _parse_png(f)
            except (struct.error, ValueError):
                header = _Header(fmt)
    elif fmt is not None:
        header = _parse_other(data[:32], fmt)
    _check_pixels(path, header.width, header.height)

    if fmt == "jpeg":
        if header.sos_offset is None:
            raise ImageReadError(path, "corrupt JPEG: no image data (start-of-scan marker not found)")
        if data.rfind(b"\xff\xd9", header.sos_offset) < 0:
            raise ImageReadError(path, "truncated JPEG: the file ends before the end-of-image marker")
    if fmt == "png" and data.rfind(b"IEND") < 0:
        raise ImageReadError(path, "truncated PNG: the file ends before the IEND chunk")

    buf = np.frombuffer(data, dtype=np.uint8)
    if fmt == "jpeg":
        factor = _reduction(header.width or 0, header.height or 0, max_side)
        flags = (_REDUCED[factor] if factor > 1 else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
        img = None
        if _COLOR_RGB is not None:  # OpenCV >= 4.10: libjpeg writes RGB directly (no BGR->RGB pass)
            try:
                img = cv2.imdecode(buf, (flags & ~cv2.IMREAD_COLOR) | _COLOR_RGB)
            except cv2.error:
                img = None
            if img is not None and img.ndim == 3 and img.shape[2] == 3:
                _check_pixels(path, img.shape[1], img.shape[0])
                return np.ascontiguousarray(_apply_orientation(img, header.orientation))
        img = cv2.imdecode(buf, flags)
    else:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        if fmt is None:
            raise ImageReadError(path, "not an image file (content is not JPEG, PNG, BMP, TIFF, WebP or GIF)")
        raise ImageReadError(path, f"corrupt {fmt.upper()} image (the decoder could not read it)")
    if header.width is None:
        _check_pixels(path, img.shape[1], img.shape[0])
    rgb = _to_rgb(img)
    rgb = _apply_orientation(rgb, header.orientation)
    return np.ascontiguousarray(rgb)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` as displayed (after EXIF orientation). Reads only the header of JPEG, PNG, BMP
    and GIF files; other formats are decoded. Raises :class:`ImageReadError`."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ImageReadError(path, "is a folder, not an image file")
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file (0 bytes)")
        h = _read_header(path)
    except ImageReadError:
        raise
    except (struct.error, ValueError, OverflowError):
        h = _Header()  # unparseable header: let the decoder decide
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if h.width and h.height and h.width > 0 and h.height > 0:
        if h.orientation in (5, 6, 7, 8):
            return int(h.height), int(h.width)
        return int(h.width), int(h.height)
    img = read_image(path)
    return int(img.shape[1]), int(img.shape[0])


def is_image_file(path: str | Path) -> bool:
    """True when the file name has one of :data:`IMAGE_EXTS` (case-insensitive); content is not checked."""
    return Path(path).suffix.lower() in IMAGE_EXTS
