"""The click network: one positive click on a photo -> the region it points at (click to segment's first click).

A small click-conditioned network in the way of RITM (Sofiiuk et al. 2022): the U-Net of
:mod:`.unet_mobilenet` (ImageNet MobileNetV2 encoder) with a second input of four guide channels (a probability
map, a previous mask, positive and negative click discs of ``R_CLICK`` pixels) added after the first
convolution (zero at the start, so the encoder begins as ImageNet trained it) and joined at every decoder level.
The weights shipped with viaseg (``weights/clicknet_nomap.npz``) were trained without any map (the map and
previous-mask channels empty), on the 149 annotated training photos of ``car-damage/train`` and
``car-damage-extra-split/train`` with simulated clicks (``tests/perf/exp_clicknet.py``, which also writes the
file); they need no model of the user's and work offline.

:meth:`ClickNet.first_region`: the network on the whole photo (squared, ``S`` pixels a side) finds the region
around the click; a second pass on a window twice that region's size ("zoom-in"), given the first pass's mask as
the previous mask, draws its outline. The result
is the region's mask on that window (``mask``, ``OUT`` pixels a side, covering photo pixels
``x0 + (col + 0.5) * scale``), which ``core.assist`` takes as the first click's region and corrects with the
later clicks. Measured: docs/RESULTS.md, "Click to segment".

TensorFlow is needed (this is ``core.ml``); ``core.assist`` stays free of it and receives the region as arrays.
"""

from __future__ import annotations

import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

S = 256  # the network's window, pixels a side
R_CLICK = 5  # click discs, pixels of the window
WORK_SIDE = 1024  # the photo is reduced to at most this long side before its windows are cut (as trained)
ZOOM = 2.0  # the second pass's window: this many times the first pass's region
LOOKS = (
    2  # the whole photo, then a window around what it found (a third look, around the second's: no better)
)
OUT = 512  # the returned mask's side (the network's probabilities upsampled, then thresholded: smoother outlines)
WEIGHTS = Path(__file__).resolve().parent / "weights" / "clicknet_nomap.npz"


def build(side: int = S, encoder: str = "mobilenet_v2"):
    """The network (inputs ``image`` side x side x 3 in 0..1 and ``guide`` side x side x 4; output the
    region's probability, side x side x 1). Every layer with weights has a fixed name (they are stored by
    name). ``encoder``: ``mobilenet_v2`` (the shipped weights') or ``efficientnet_lite0`` (experiments:
    ``tests/perf/exp_clicknet.py --encoder``)."""
    import keras
    from keras import layers

    from .fast_layers import FusedBatchNormalization

    if encoder == "efficientnet_lite0":
        from .unet_effnet import SKIPS, effnet_blocks, load_imagenet_weights
        from .unet_mobilenet import DECODER

        rescale, stem, stem_bn, blocks = (
            (255.0 / 128.0, -127.0 / 128.0),
            "eff_stem",
            "eff_stem_bn",
            effnet_blocks,
        )
    else:
        from .unet_mobilenet import DECODER, SKIPS, load_imagenet_weights, mobilenet_blocks

        rescale, stem, stem_bn, blocks = (2.0, -1.0), "Conv1", "bn_Conv1", mobilenet_blocks

    def bn(x, n):
        return FusedBatchNormalization(momentum=0.9, epsilon=1e-3, name=n)(x)

    def relu6(x, n):
        return layers.ReLU(6.0, name=n)(x)

    img = keras.Input((side, side, 3), name="image")
    guide = keras.Input((side, side, 4), name="guide")
    x = layers.Rescaling(rescale[0], offset=rescale[1], name="to_minus1_1")(img)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name=stem)(x)
    g = layers.Conv2D(
        32, 3, strides=2, padding="same", use_bias=False, name="guide_conv", kernel_initializer="zeros"
    )(guide)
    x = relu6(bn(layers.Add(name="guide_add")([x, g]), stem_bn), "Conv1_relu")
    x, feats = blocks(x, bn, relu6)
    x = layers.ReLU()(bn(layers.Conv2D(128, 1, use_bias=False, name="dec_top")(x), "dec_top_bn"))
    for i, ((skip_name, skip_width), width) in enumerate(zip(reversed(SKIPS), DECODER, strict=True)):
        sk = layers.ReLU()(
            bn(
                layers.Conv2D(skip_width, 1, use_bias=False, name=f"dec{i}_skip")(feats[skip_name]),
                f"dec{i}_sb",
            )
        )
        x = layers.UpSampling2D(2)(x)
        f = 2 ** (4 - i)
        x = layers.Concatenate()([x, sk, layers.AveragePooling2D(f)(guide) if f > 1 else guide])
        x = layers.ReLU()(
            bn(layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"dec{i}_conv")(x), f"dec{i}_bn")
        )
    x = layers.Concatenate()([layers.UpSampling2D(2, interpolation="bilinear")(x), guide])
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="head_conv")(x)
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32", name="mask")(x)
    model = keras.Model([img, guide], out, name="clicknet")
    load_imagenet_weights(model)
    return model


# ------------------------------------------------------------------------------------------------ weights
def save_weights(model, path: str | Path, about: str = "") -> Path:
    """Store every layer's weights as float16 (``layer/index``), and ``about`` (where they come from)."""
    arrays: dict[str, np.ndarray] = {"__about__": np.array(about)}
    for layer in model.layers:
        for i, v in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{i}"] = np.asarray(v, dtype=np.float16)
    path = Path(path)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)
    return path


def weights_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a click network weights file (a .npz of :func:`save_weights`), in words, or None;
    numpy only, no TensorFlow: what the app and ``viaseg clicknet`` check before using or writing one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
        if head.startswith(b"\x93NUMPY"):
            return "a single array, not a weights file"
        if head and not head.startswith(b"PK"):  # numpy said "pickled data ... allow_pickle" of a text file
            return "not a .npz archive"
        z = np.load(path)
        if not hasattr(z, "files"):
            return "a single array, not a weights file"
        with z:
            keys = [k for k in z.files if not k.startswith("__")]
        if not keys or any(not k.rpartition("/")[2].isdigit() for k in keys):
            return "it holds no layer weights"
    except FileNotFoundError:
        return "no such file"
    except EOFError:
        return "an empty file"
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return str(exc) or type(exc).__name__
    return None


def load_weights(model, path: str | Path = WEIGHTS) -> None:
    """Set ``model``'s weights from a file of :func:`save_weights`; ``ValueError`` naming the file when it does
    not fit the network."""
    path = Path(path)
    try:
        z = np.load(path)
        if not hasattr(z, "files"):  # a plain .npy array, not a weights file
            raise ValueError("not a .npz weights file")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty file
        raise ValueError(
            f"{path}: cannot read the click network's weights ({exc or type(exc).__name__})"
        ) from exc
    with z:
        stored: dict[str, dict[int, np.ndarray]] = {}
        for key in z.files:
            if key.startswith("__"):
                continue
            name, _, idx = key.rpartition("/")
            if not idx.isdigit():  # "invalid literal for int()" named no file
                raise ValueError(f"{path}: not a click network weights file (it holds {key!r})")
            stored.setdefault(name, {})[int(idx)] = z[key]
    for layer in model.layers:
        want = layer.get_weights()
        if not want:
            continue
        have = stored.pop(layer.name, None)
        if have is None or len(have) != len(want):
            raise ValueError(f"{path}: no weights for the click network's layer {layer.name}")
        values = [have[i].astype(np.float32) for i in range(len(want))]
        if [v.shape for v in values] != [w.shape for w in want]:
            raise ValueError(f"{path}: layer {layer.name} has other shapes than the click network's")
        layer.set_weights(values)
    if stored:
        raise ValueError(f"{path}: {len(stored)} stored layers are not in the click network")


# ------------------------------------------------------------------------------------------------ geometry
def warp(arr: np.ndarray, win, interp=cv2.INTER_LINEAR, side: int = S) -> np.ndarray:
    """The square window ``win`` = (x0, y0, side) of ``arr`` at ``side`` x ``side`` (zeros outside)."""
    x0, y0, wside = win
    k = side / wside
    m = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], np.float32)
    return cv2.warpAffine(arr, m, (side, side), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def unwarp(mask_w: np.ndarray, win, shape_hw) -> np.ndarray:
    """A window's mask back on the photo (``shape_hw``)."""
    x0, y0, side = win
    k = side / mask_w.shape[0]
    m = np.array([[k, 0, x0], [0, k, y0]], np.float32)
    return cv2.warpAffine(mask_w.astype(np.uint8), m, shape_hw[::-1], flags=cv2.INTER_NEAREST) > 0


def bbox(m: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(m)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def zoom_window(bb, w: int, h: int, factor: float, min_frac: float = 0.12) -> tuple[float, float, float]:
    """A square window ``factor`` times the box ``bb`` = (x0, y0, x1, y1), at least ``min_frac`` of the
    photo's long side (and 32 pixels), centred on it."""
    x0, y0, x1, y1 = bb
    side = max(max(x1 - x0, y1 - y0) * factor, min_frac * max(w, h), 32.0)
    return (x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2, side


def full_window(w: int, h: int) -> tuple[float, float, float]:
    """The whole photo, squared (centred)."""
    side = float(max(w, h))
    return (w - side) / 2, (h - side) / 2, side


def guide_of(prob_w, prev_w, clicks_w) -> np.ndarray:
    """The guide input: map, previous mask, positive and negative discs of ``clicks_w`` = [(x, y, positive)]
    in window pixels."""
    discs = [np.zeros((S, S), np.float32) for _ in range(2)]
    for x, y, positive in clicks_w:
        cv2.circle(discs[0 if positive else 1], (int(round(x)), int(round(y))), R_CLICK, 1.0, -1)
    return np.stack([prob_w, prev_w, *discs], -1).astype(np.float32)


def work_image(image: np.ndarray) -> np.ndarray:
    """The photo (RGB uint8, any size) at most ``WORK_SIDE`` a side, as the network was trained on it."""
    h, w = image.shape[:2]
    s = WORK_SIDE / max(h, w)
    if s >= 1.0:
        return np.ascontiguousarray(image[..., :3])
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(np.ascontiguousarray(image[..., :3]), size, interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------------------ inference
@dataclass
class FirstRegion:
    """The network's region for a click: ``mask`` (bool, ``OUT`` x ``OUT``) covers photo pixels
    ``x0 + (col + 0.5) * scale`` across and ``y0 + (row + 0.5) * scale`` down (``core.assist.RegionMask``'s
    convention); ``mask`` is all False when the network found nothing at the click."""

    mask: np.ndarray
    x0: float
    y0: float
    scale: float


class ClickNet:
    """The network, loaded once (:meth:`load`), then :meth:`first_region` per click. Thread-safe: calls are
    serialized (one network, one forward pass at a time)."""

    _cache: dict[str, ClickNet] = {}
    _cache_lock = threading.Lock()

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self._lock = threading.Lock()
        spec = (tf.TensorSpec((1, S, S, 3), tf.float32), tf.TensorSpec((1, S, S, 4), tf.float32))
        self._fn = tf.function(lambda x, g: model([x, g], training=False), input_signature=spec)
        self.forward_passes = 0

    @classmethod
    def load(cls, path: str | Path = WEIGHTS) -> ClickNet:
        """The network with the weights of ``path`` (kept: later calls return the same one)."""
        key = str(Path(path).resolve())
        with cls._cache_lock:
            if key not in cls._cache:
                if not Path(path).is_file():
                    raise ValueError(f"{path}: the click network's weights are missing")
                from . import fast_layers  # noqa: F401  (the fused batch norm)

                model = build()
                load_weights(model, path)
                cls._cache[key] = cls(model)
            return cls._cache[key]

    def _run(self, img_w: np.ndarray, guide: np.ndarray) -> np.ndarray:
        with self._lock:
            out = self._fn(img_w[None].astype(np.float32) / 255.0, guide[None])
            self.forward_passes += 1
        return np.asarray(out)[0, ..., 0]

    def first_region(
        self, image: np.ndarray, size_wh: tuple[int, int], x: float, y: float, threshold: float = 0.5
    ) -> FirstRegion:
        """The region a positive click at photo pixel (``x``, ``y``) points at. ``image``: the photo (RGB uint8)
        at any resolution (a reduced decode is fine; :func:`work_image` reduces it further), ``size_wh`` the
        photo's true size."""
        fp = self.first_probs(image, size_wh, x, y, threshold)
        return FirstRegion(fp.mask >= threshold, fp.x0, fp.y0, fp.scale)

    def first_probs(
        self, image: np.ndarray, size_wh: tuple[int, int], x: float, y: float, threshold: float = 0.5
    ) -> FirstRegion:
        """:meth:`first_region` before its threshold: ``mask`` holds the last look's probabilities (float32,
        ``OUT`` a side) in the same window."""
        img = work_image(image)
        h, w = img.shape[:2]
        s = w / float(size_wh[0])
        cx, cy = x * s, y * s
        empty = np.zeros((S, S), np.float32)

        def run(win, prev: np.ndarray | None = None) -> np.ndarray:
            k = S / win[2]
            prev_w = empty if prev is None else warp(prev.astype(np.uint8), win, cv2.INTER_NEAREST)
            g = guide_of(empty, prev_w.astype(np.float32), [((cx - win[0]) * k, (cy - win[1]) * k, True)])
            return self._run(warp(img, win), g)

        def window_around(found: np.ndarray):
            _, lab = cv2.connectedComponents(found.astype(np.uint8))
            r, c = min(max(int(cy), 0), h - 1), min(max(int(cx), 0), w - 1)
            if lab[r, c]:
                bb = bbox(lab == lab[r, c])
            elif found.any():
                bb = bbox(found)
            else:
                bb = (cx - 10, cy - 10, cx + 10, cy + 10)
            return zoom_window(bb, w, h, ZOOM)

        win = full_window(w, h)
        prob = run(win)
        for _ in range(LOOKS - 1):
            found = unwarp(prob >= threshold, win, (h, w))
            win = window_around(found)
            prob = run(win, found)  # the last look's mask as the previous mask (as trained)
        probs = cv2.resize(prob, (OUT, OUT), interpolation=cv2.INTER_LINEAR)
        return FirstRegion(probs, win[0] / s, win[1] / s, win[2] / OUT / s)
