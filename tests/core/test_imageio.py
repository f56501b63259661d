"""imageio: every image kind becomes HxWx3 uint8 RGB in display orientation; bad files give ImageReadError."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from viaseg.core.base.errors import ImageReadError
from viaseg.core.imaging.imageio import IMAGE_EXTS, MAX_PIXELS, decode_image, image_size, read_image


def _quadrants(w=40, h=24) -> np.ndarray:
    """RGB test card: red top-left, green top-right, blue bottom-left, white bottom-right."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (0, 0, 255)
    img[h // 2 :, w // 2 :] = (255, 255, 255)
    return img


def _exif_app1(orientation: int, big_endian: bool = False) -> bytes:
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += (
        struct.pack(e + "H", 1) + struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0)
    )
    tiff += struct.pack(e + "I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _jpeg_with_orientation(rgb: np.ndarray, orientation: int, big_endian=False) -> bytes:
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    data = enc.tobytes()
    return data[:2] + _exif_app1(orientation, big_endian) + data[2:]


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)
    )


def _palette_png(indices: np.ndarray, palette: list[tuple[int, int, int]]) -> bytes:
    h, w = indices.shape
    raw = b"".join(b"\x00" + bytes(indices[y].astype(np.uint8)) for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
        + _png_chunk(b"PLTE", b"".join(bytes(c) for c in palette))
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _close(a: np.ndarray, b: np.ndarray, tol: int = 12) -> bool:
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= tol


def _same_quadrants(a: np.ndarray, b: np.ndarray, tol: int = 30) -> bool:
    """Same shape and same mean colour at the centre of each quadrant (JPEG blurs the quadrant borders)."""
    if a.shape != b.shape:
        return False
    h, w = a.shape[:2]
    for cy in (h // 4, 3 * h // 4):
        for cx in (w // 4, 3 * w // 4):
            pa = a[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3).mean(axis=0)
            pb = b[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3).mean(axis=0)
            if np.abs(pa - pb).max() > tol:
                return False
    return True


def test_plain_jpeg_is_rgb(tmp_path):
    p = tmp_path / "a.jpg"
    card = _quadrants()
    cv2.imwrite(str(p), cv2.cvtColor(card, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    img = read_image(p)
    assert img.dtype == np.uint8 and img.shape == (24, 40, 3)
    assert _same_quadrants(img, card)  # red stays red: channels are RGB, not BGR
    assert img[5, 5, 0] > 200 and img[5, 5, 2] < 50
    assert image_size(p) == (40, 24)


@pytest.mark.parametrize(
    "orientation,expected",
    [
        (1, lambda a: a),
        (3, lambda a: cv2.rotate(a, cv2.ROTATE_180)),
        (6, lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)),
        (8, lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)),
        (2, lambda a: a[:, ::-1]),
        (5, lambda a: a.transpose(1, 0, 2)),
    ],
)
def test_exif_orientation_applied(tmp_path, orientation, expected):
    card = _quadrants()
    p = tmp_path / f"o{orientation}.jpg"
    p.write_bytes(_jpeg_with_orientation(card, orientation))
    img = read_image(p)
    want = expected(card)
    assert img.shape == want.shape
    assert _same_quadrants(img, np.ascontiguousarray(want))
    assert image_size(p) == (want.shape[1], want.shape[0])
    # same result as OpenCV's own EXIF-aware reader (what a browser shows)
    ref = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(img, ref)


def test_exif_big_endian_and_reduced_decode(tmp_path):
    card = cv2.resize(_quadrants(), (800, 480), interpolation=cv2.INTER_NEAREST)
    p = tmp_path / "big.jpg"
    p.write_bytes(_jpeg_with_orientation(card, 6, big_endian=True))
    assert image_size(p) == (480, 800)
    full = read_image(p)
    assert full.shape == (800, 480, 3)
    half = read_image(p, max_side=400)  # 800/2 = 400 >= 400, 800/4 = 200 < 400
    assert half.shape == (400, 240, 3)
    quarter = read_image(p, max_side=150)  # 800/4 = 200 >= 150, 800/8 = 100 < 150
    assert quarter.shape == (200, 120, 3)
    assert read_image(p, max_side=801).shape == full.shape
    small = cv2.resize(full, (240, 400), interpolation=cv2.INTER_AREA)
    assert _same_quadrants(half, small)  # same content, rotated the same way
    assert _same_quadrants(full, cv2.rotate(card, cv2.ROTATE_90_CLOCKWISE))


def test_rgba_png_composited_over_white(tmp_path):
    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[:, :, :3] = (255, 0, 0)  # blue in BGR
    bgra[:, :6, 3] = 255  # left opaque
    bgra[:, 6:, 3] = 0  # right transparent
    bgra[0, 0, 3] = 128
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), bgra)
    img = read_image(p)
    assert img.shape == (10, 12, 3) and img.dtype == np.uint8
    assert tuple(img[5, 2]) == (0, 0, 255)
    assert tuple(img[5, 9]) == (255, 255, 255)
    assert _close(img[0, 0], np.array([127, 127, 255]), 2)


def test_gray_png_and_jpeg(tmp_path):
    g = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1))
    cv2.imwrite(str(tmp_path / "g.png"), g)
    cv2.imwrite(str(tmp_path / "g.jpg"), g)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (8, 25, 3)
    assert (
        np.array_equal(img[:, :, 0], g)
        and np.array_equal(img[:, :, 1], g)
        and np.array_equal(img[:, :, 2], g)
    )
    j = read_image(tmp_path / "g.jpg")
    assert j.shape == (8, 25, 3) and _close(j[:, :, 1], g, 12)


def test_palette_png(tmp_path):
    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    pal = [(255, 0, 0), (0, 128, 0), (10, 20, 30)]
    p = tmp_path / "pal.png"
    p.write_bytes(_palette_png(idx, pal))
    img = read_image(p)
    assert img.shape == (2, 3, 3)
    for y in range(2):
        for x in range(3):
            assert tuple(int(v) for v in img[y, x]) == pal[idx[y, x]]
    assert image_size(p) == (3, 2)


def test_16bit_png(tmp_path):
    bgr16 = np.zeros((4, 5, 3), np.uint16)
    bgr16[..., 2] = 65535  # red
    bgr16[..., 1] = 32896  # ~128
    bgr16[0, 0] = (257 * 7, 0, 65535)
    p = tmp_path / "d.png"
    cv2.imwrite(str(p), bgr16)
    assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really a 16-bit file
    img = read_image(p)
    assert img.dtype == np.uint8
    assert tuple(img[1, 1]) == (255, 128, 0)
    assert tuple(img[0, 0]) == (255, 0, 7)
    g16 = (np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)
    cv2.imwrite(str(tmp_path / "g16.png"), g16)
    g = read_image(tmp_path / "g16.png")
    assert g.shape == (4, 5, 3) and np.array_equal(g[:, :, 0], np.round(g16 / 257.0).astype(np.uint8))


def test_png_exif_orientation(tmp_path):
    card = _quadrants()
    ok, enc = cv2.imencode(".png", cv2.cvtColor(card, cv2.COLOR_RGB2BGR))
    data = enc.tobytes()
    exif = _exif_app1(6)[10:]  # TIFF block only
    ihdr_end = 8 + 25
    p = tmp_path / "o.png"
    p.write_bytes(data[:ihdr_end] + _png_chunk(b"eXIf", exif) + data[ihdr_end:])
    assert image_size(p) == (24, 40)
    assert np.array_equal(read_image(p), cv2.rotate(card, cv2.ROTATE_90_CLOCKWISE))


def test_bmp(tmp_path):
    card = _quadrants()
    p = tmp_path / "c.bmp"
    cv2.imwrite(str(p), cv2.cvtColor(card, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image(p), card)
    assert image_size(p) == (40, 24)


def _err(path: Path, fn=read_image) -> str:
    with pytest.raises(ImageReadError) as ei:
        fn(path)
    assert ei.value.path == str(path)
    assert str(path) in str(ei.value)
    return ei.value.problem


def test_missing_empty_text_and_folder(tmp_path):
    assert "no such file" in _err(tmp_path / "nope.jpg")
    assert "no such file" in _err(tmp_path / "nope.jpg", image_size)
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert "0 bytes" in _err(tmp_path / "empty.jpg")
    assert "0 bytes" in _err(tmp_path / "empty.jpg", image_size)
    (tmp_path / "text.jpg").write_text("this is not a picture\n" * 20)
    assert "not an image" in _err(tmp_path / "text.jpg")
    assert "not an image" in _err(tmp_path / "text.jpg", image_size)
    (tmp_path / "dir.png").mkdir()
    assert "folder" in _err(tmp_path / "dir.png")


def test_truncated_files(tmp_path):
    card = cv2.resize(_quadrants(), (200, 120))
    ok, enc = cv2.imencode(".jpg", card)
    data = enc.tobytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    assert "truncated" in _err(tmp_path / "t.jpg")
    (tmp_path / "h.jpg").write_bytes(data[:100])  # header only, no scan data
    assert "JPEG" in _err(tmp_path / "h.jpg")
    ok, enc = cv2.imencode(".png", card)
    data = enc.tobytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    assert "PNG" in _err(tmp_path / "t.png")
    garbage = bytearray(data)
    garbage[60:200] = b"\x00" * 140  # corrupt compressed data, file still complete
    (tmp_path / "c.png").write_bytes(bytes(garbage))
    assert "PNG" in _err(tmp_path / "c.png")


def test_too_large_is_refused_before_decoding(tmp_path):
    w = h = 20000  # 400 MP
    assert w * h > MAX_PIXELS
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + _png_chunk(b"IEND", b"")
    )
    (tmp_path / "huge.png").write_bytes(png)
    assert "too large" in _err(tmp_path / "huge.png")
    assert image_size(tmp_path / "huge.png") == (w, h)  # the header alone is fine


def test_image_exts():
    assert ".jpg" in IMAGE_EXTS and ".jpeg" in IMAGE_EXTS and ".png" in IMAGE_EXTS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTS)


def test_real_dataset_sizes_match_decoder(car_damage):
    files = sorted(p for p in (car_damage / "val").iterdir() if p.suffix.lower() in IMAGE_EXTS)
    files += sorted(p for p in (car_damage / "train").iterdir() if p.suffix.lower() == ".png")
    assert files
    for p in files:
        img = read_image(p)
        ref = cv2.imread(str(p), cv2.IMREAD_COLOR)
        assert img.shape == ref.shape, p
        assert image_size(p) == (ref.shape[1], ref.shape[0]), p
        if p.suffix.lower() != ".png":  # PNGs there have alpha: composited over white, not dropped
            assert np.array_equal(img, cv2.cvtColor(ref, cv2.COLOR_BGR2RGB)), p


def test_decode_image_from_bytes(tmp_path):
    card = _quadrants()
    data = _jpeg_with_orientation(card, 8)
    p = tmp_path / "x.jpg"
    p.write_bytes(data)
    assert np.array_equal(decode_image(data, "x.jpg"), read_image(p))
    with pytest.raises(ImageReadError) as ei:
        decode_image(b"", "mem.png")
    assert "mem.png" in str(ei.value) and "0 bytes" in str(ei.value)
    with pytest.raises(ImageReadError):
        decode_image(data[: len(data) // 2], "half.jpg")
