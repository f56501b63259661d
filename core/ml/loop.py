"""Close the loop: improve the active model from the user's corrections, and say which photo to label next.

No Qt and no TensorFlow at import (the GUI pickles an :class:`ImproveJob` into the training process, which runs
it; ``viaseg train --init-from`` is the same fine-tuning from the command line).

* Every run records what it trained on: ``trained_on`` maps each training image's file name to a hash of its
  regions (:func:`region_hash`), in the run's ``summary.json`` and the model's metadata. Images whose hash is
  missing or different are *changed since* that model (:func:`changed_since`): added or edited.
* *Improve model* (:meth:`ImproveJob.run`): fine-tune from the active model's weights for a time budget on the
  current annotations, the changed images drawn ``emphasis`` times as often; then score the old model on the
  same held-out images the new one was scored on and say which is better (:func:`decide`). Held-out images:
  the project's validation split when it has one; else images the old model never trained on (a seeded share
  of the new ones), so neither model has seen them; else a seeded share of all images, said to favour the old
  model (it may have trained on them). With enough new photos (10 or more) it chooses its threshold again on
  half of them, kept out for the first half of its budget (``train_calibrate``): fine-tuned on a new style, a
  model is far less sure there than its starting model was; with fewer it keeps the starting model's threshold.
* *Label next* (:func:`uncertainty`, :func:`rank_uncertain`): how unsure the model is about a photo;
  :func:`rank_diverse` spreads a batch of unsure photos over unlike ones (:func:`photo_embeddings`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..annotation.project import ImageEntry
from .train_calibrate import IMPROVE_SHARE, threshold_line


def region_hash(entry: ImageEntry) -> str:
    """A short hash of an image's regions (shapes and attributes, in order): equal when nothing was edited."""
    data = [[r.shape, r.attributes] for r in entry.regions]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def trained_on(entries: list[ImageEntry]) -> dict[str, str]:
    """``{file name: region hash}`` for the images a run trains on (a run records this)."""
    return {e.filename: region_hash(e) for e in entries}


def changed_since(entries: list[ImageEntry], record: dict[str, str] | None) -> list[ImageEntry]:
    """The annotated images of ``entries`` that are new or edited since the run that wrote ``record``
    (``None``: nothing is known about that model, so none is called changed)."""
    if record is None:
        return []
    return [e for e in entries if e.regions and record.get(e.filename) != region_hash(e)]


def read_trained_on(model_path: str | Path) -> dict[str, str] | None:
    """What the model at ``model_path`` trained on: its run folder's ``summary.json``, else its metadata;
    ``None`` for a model from before runs recorded it."""
    path = Path(model_path)
    summary = path.parent / "summary.json"
    try:
        rec = json.loads(summary.read_text()).get("trained_on")
        if isinstance(rec, dict):
            return rec
    except (OSError, ValueError):
        pass
    try:
        from .modelio import read_meta

        rec = read_meta(path).get("trained_on")
        return rec if isinstance(rec, dict) else None
    except Exception:  # no record is an answer too
        return None


# ------------------------------------------------------------------------------------------------- improving
@dataclass
class ImprovePlan:
    train: list[ImageEntry]
    held_out: list[ImageEntry]
    changed: list[str]  # file names of the images new or edited since the old model
    held_out_source: str  # where the held-out images come from, in words
    fair: bool  # False: the old model may have trained on held-out images (its score is optimistic)


def plan(
    train: list[ImageEntry],
    val: list[ImageEntry] | None,
    record: dict[str, str] | None,
    fraction: float = 0.2,
    seed: int = 0,
) -> ImprovePlan:
    """Which images fine-tune and which judge (see the module's docstring). ``train``: the training split's
    images; ``val``: the project's validation split (None or empty when it has none)."""
    changed = changed_since(train, record)
    names = [e.filename for e in changed]
    if val and any(e.regions for e in val):
        return ImprovePlan(list(train), list(val), names, "the project's validation split", True)
    annotated = [e for e in train if e.regions]
    unseen = [e for e in annotated if record is not None and e.filename not in record]
    rng = random.Random(seed)
    if len(unseen) >= 2:
        k = max(1, round(len(unseen) * fraction))
        held = rng.sample(unseen, k)
        src, fair = f"{k} of the {len(unseen)} images the old model never trained on (seed {seed})", True
    elif len(annotated) >= 2:
        k = max(1, round(len(annotated) * fraction))
        held = rng.sample(annotated, k)
        src = f"{k} of the {len(annotated)} annotated images (seed {seed}); the old model may have trained on them"
        fair = False
    else:
        return ImprovePlan(list(train), [], names, "none (fewer than two annotated images)", False)
    ids = {id(e) for e in held}
    return ImprovePlan(
        [e for e in train if id(e) not in ids],
        held,
        [n for n in names if n not in {e.filename for e in held}],
        src,
        fair,
    )


NOTHING_TO_LEARN = {
    "improve": (
        "Cannot improve the model",
        "Nothing to improve on yet: the project has no annotated regions. Label a few photos (L opens the one to "
        "label next), then Improve model.",
    ),
    "train": (
        "Cannot start training",
        "Nothing to train on yet: the project has no annotated regions. Draw the damage on a few photos (or add "
        "an annotated dataset under Also train on), then Start training.",
    ),
}


def learn_problem(dataset: Any, action: str = "improve") -> str | None:
    """Why *Improve model* (``action="improve"``) or a training run (``"train"``) cannot start on ``dataset``
    (what a ``TrainConfig``'s ``dataset`` holds: a path, a Dataset, a Split, a Project or a list of entries), in
    a sentence for the user; None when it can. Cheap (no TensorFlow, no image read), so the app can say it at
    once instead of after starting a training process."""
    from .train_plumbing import _as_dataset, _nothing_annotated

    failed, empty = NOTHING_TO_LEARN[action]
    try:
        obj = _as_dataset(dataset)
    except Exception as exc:  # the dataset's own message (file and problem)
        return f"{failed}: {exc}"
    return empty if _nothing_annotated(obj) else None


def decide(old: float | None, new: float | None) -> str:
    """``"new"`` when the new model is not worse on the held-out images (or the old cannot be scored),
    else ``"old"``."""
    if new is None:
        return "old"
    if old is None:
        return "new"
    return "new" if new >= old else "old"


@dataclass
class ImproveResult:
    """A ``TrainResult``'s fields (the panel reads them the same way) plus the comparison."""

    ok: bool
    run_dir: Path | None = None
    model_path: Path | None = None
    best_epoch: int = -1
    best_metrics: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    error: str | None = None
    reason: str = ""
    old_model: str = ""
    comparison: dict = field(default_factory=dict)  # what improve.json holds

    @property
    def keep(self) -> str:
        return self.comparison.get("keep", "old")


@dataclass
class ImproveJob:
    """Fine-tune ``config.init_from`` (the active model) on ``config``'s data. ``config`` is a ``TrainConfig``
    whose ``dataset`` is the current annotations (unsaved edits included); its ``time_limit_s`` is the
    budget. ``emphasis``: how many times as often a changed image is drawn."""

    config: Any
    emphasis: int = 3
    seed: int = 0
    min_epochs: int = 3  # the budget never cuts the fine-tuning before this (see TrainConfig.min_epochs)
    # the fine-tuning's peak learning rate (a fresh Adam starts from the trained weights); None: the config's
    learning_rate: float | None = None

    def prepare(self):
        """The fine-tuning ``TrainConfig`` and its :class:`ImprovePlan` (no TensorFlow)."""
        from .presets import resolve_schedule
        from .train_plumbing import resolve_data

        cfg = self.config
        if not cfg.init_from:
            raise ValueError("no model to improve: make a model active first")
        data = resolve_data(cfg)
        seeded = str(data.val_source).startswith(("seeded", "none"))  # no validation split of its own
        train = data.train + data.val if seeded else data.train  # the plan holds out its own images then
        record = read_trained_on(cfg.init_from)
        p = plan(train, None if seeded else data.val, record, cfg.val_fraction, self.seed)
        changed = set(p.changed)
        extra = [e for e in p.train if e.filename in changed]
        tcfg = dataclasses.replace(
            cfg,
            dataset=p.train,
            extra_train=[list(extra)] * max(0, self.emphasis - 1) if extra else [],
            # the held-out images judge; further validation sets (e.g. another style) are reported too
            min_epochs=max(cfg.min_epochs, self.min_epochs),
            val=([p.held_out] + [ents for _, ents in data.more_val] if data.more_val else p.held_out)
            if p.held_out
            else None,
            keep="last",
            patience=10_000,
            learning_rate=cfg.learning_rate if self.learning_rate is None else self.learning_rate,
            # the final weights are kept, so the held-out images judge without having chosen anything;
            # that needs a schedule that does not follow the validation score
            lr_schedule="cosine" if resolve_schedule(cfg) == "plateau" else cfg.lr_schedule,
            # the threshold is chosen again on half of the new photos, kept out for half of the budget: only they
            # can tell how sure the model is on what it is learning (train_calibrate); too few: the old one
            calibrate=IMPROVE_SHARE if cfg.calibrate and p.changed else 0.0,
            calibrate_on=list(p.changed) if cfg.calibrate and p.changed else None,
        )
        if not p.held_out:
            tcfg.val_fraction = 0.0
        return tcfg, p, record

    def run(self, on_event: Callable | None = None, should_stop: Callable[[], bool] | None = None):
        from .train import train

        try:
            tcfg, p, record = self.prepare()
        except Exception as exc:  # a message, never a traceback
            return ImproveResult(ok=False, error=f"cannot improve the model: {exc}")
        res = train(tcfg, on_event=on_event, should_stop=should_stop)
        out = ImproveResult(
            **{f.name: getattr(res, f.name) for f in dataclasses.fields(res)}, old_model=str(tcfg.init_from)
        )
        if not res.ok or res.model_path is None:
            return out
        per_new = res.summary.get("per_image_dice") or {}
        judged = [e for e in p.held_out if e.filename in per_new]
        old_scores = score_model(tcfg.init_from, judged, tcfg.batch_size) if judged else None
        new_mean = float(np.mean([per_new[e.filename] for e in judged])) if judged else None
        old_mean = old_scores["mean_dice"] if old_scores else None
        out.comparison = {
            "old_model": str(tcfg.init_from),
            "new_model": str(res.model_path),
            "held_out": [e.filename for e in judged],
            "held_out_source": p.held_out_source,
            "fair": p.fair,
            "changed": p.changed,
            "emphasis": self.emphasis,
            "old_known": record is not None,
            "old_mean_dice": old_mean,
            "new_mean_dice": new_mean,
            "old_per_image": old_scores["per_image"] if old_scores else {},
            "keep": decide(old_mean, new_mean),
            # each model is judged at its own threshold; how the new one's was set, in words
            "old_threshold": _threshold_of(tcfg.init_from),
            "new_threshold": res.summary.get("threshold"),
            "threshold_how": threshold_line(res.summary),
        }
        assert res.run_dir is not None  # train() leaves it None only with model_path None too
        try:
            (Path(res.run_dir) / "improve.json").write_text(json.dumps(out.comparison, indent=2))
        except OSError:
            pass
        return out


def _threshold_of(model_path: str | Path) -> float | None:
    from .modelio import read_meta

    try:
        t = read_meta(model_path).get("threshold")
    except Exception:  # an unreadable file: the verdict just does not say
        return None
    return float(t) if isinstance(t, (int, float)) else None


def score_model(model_path: str | Path, entries: list[ImageEntry], batch_size: int = 8) -> dict:
    """``viaseg evaluate``'s scores of a model file on ``entries`` (full resolution, its own averaging)."""
    from .evaluate import evaluate
    from .predict import Predictor

    result = evaluate(Predictor.load(model_path), entries, batch_size=batch_size)
    return {
        "mean_dice": result.mean_dice,
        "global_dice": result.global_dice,
        "per_image": {s.image: s.dice for s in result.per_image},
    }


# ---------------------------------------------------------------------------------------------- label next
def uncertainty(probs: np.ndarray, floor: float = 0.02) -> float:
    """How unsure a probability map is, in [0, 1]: the mean binary entropy (bits) of its pixels, counting only
    pixels the model gives at least ``floor`` of damage (a sure background is not doubt). A photo with a
    large area the model half-believes ranks first; a clean photo or one it is sure about ranks last."""
    p = np.clip(np.asarray(probs, dtype=np.float32), 1e-6, 1 - 1e-6)
    h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    h[p < floor] = 0.0
    return float(h.mean())


def rank_uncertain(scores: dict[str, float]) -> list[str]:
    """Names most uncertain first (ties by name, so the order is stable)."""
    return sorted(scores, key=lambda n: (-scores[n], n))


def view_disagreement(probs: np.ndarray, mirrored: np.ndarray, floor: float = 0.02) -> float:
    """How much two views of one photo disagree, in [0, 1]: the mean absolute difference between the map of the
    photo and the map of its mirror image flipped back (``mirrored``), counting only pixels where either view
    gives at least ``floor`` of damage. A model that sees the same damage both ways scores near 0 however
    unsure its probabilities are; one whose answer changes with a flip (it has not learned that kind of photo)
    scores high. An alternative *Label next* score to :func:`uncertainty` (``bench_loop.py --score views``);
    measured on the loop it did no better (docs/RESULTS.md), so the app ranks by :func:`uncertainty`."""
    a = np.asarray(probs, dtype=np.float32)
    b = np.asarray(mirrored, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"map shapes differ: {a.shape} vs {b.shape}")
    d = np.abs(a - b)
    d[np.maximum(a, b) < floor] = 0.0
    return float(d.mean())


def photo_embeddings(pred: Any, paths: list, batch_size: int = 8) -> dict[str, np.ndarray | None]:
    """What the model's encoder makes of each photo: its deepest feature map (the smallest spatial size in the
    network, the last layer of that size), averaged over the image and scaled to unit length, one vector per
    path (``None`` for a photo that cannot be read). Photos the encoder sees alike are near each other, which is
    what :func:`rank_diverse` spreads a batch over. ``pred``: a :class:`~viaseg.core.ml.predict.Predictor`
    (an ensemble: its first member's encoder). Loads TensorFlow."""
    import cv2
    import keras

    from .predict import _INTERP

    network = (pred.members or [pred.model])[0]
    best = None
    for layer in network.layers:
        shape = getattr(layer.output, "shape", None)
        if shape is None or len(shape) != 4 or shape[1] is None or shape[2] is None:
            continue
        size = int(shape[1]) * int(shape[2])
        if best is None or size <= best[0]:
            best = (size, layer)
    if best is None:
        raise ValueError(f"{pred.path or 'model'}: no feature map to take photo embeddings from")
    encoder = keras.Model(network.inputs, best[1].output)
    h, w = pred.input_hw
    out: dict[str, np.ndarray | None] = {}
    ok: list[tuple[str, np.ndarray]] = []
    for p in paths:
        try:
            img, _, _ = pred._load(p)
        except Exception:  # unreadable: no embedding, the caller ranks it last
            out[str(p)] = None
            continue
        ok.append((str(p), cv2.resize(img, (w, h), interpolation=_INTERP[pred.resize])))
    for i in range(0, len(ok), batch_size):
        chunk = ok[i : i + batch_size]
        x = pred._normalise(np.stack([im for _, im in chunk]))
        feats = np.asarray(encoder([x], training=False), dtype=np.float32).mean(axis=(1, 2))
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        for (name, _), f in zip(chunk, feats, strict=True):
            out[name] = f
    return out


def rank_diverse(
    scores: dict[str, float],
    embeddings: dict[str, np.ndarray | None],
    labelled: np.ndarray | None = None,
    top: float = 0.5,
) -> list[str]:
    """Names in the order to label them, a batch at a time: uncertain *and* unlike each other. The most
    uncertain share ``top`` of the photos (:func:`uncertainty` ``scores``) come first, ordered greedily: each next
    photo maximizes its uncertainty (relative to the most uncertain) times its distance to the nearest photo
    already chosen or already ``labelled`` (their embeddings, ``N x D``; cosine distance of the unit vectors of
    :func:`photo_embeddings`); the rest follow in the same greedy order. Ranking by uncertainty alone can fill a
    batch with near copies of one hard scene; this spreads it over what the model has not seen (the core-set
    idea, weighted by doubt). Photos without an embedding keep their uncertainty order at the end.
    An alternative *Label next* order (``bench_loop.py --score diverse``); on the loop it did no better than
    the uncertainty alone (docs/RESULTS.md, thirtieth session), so the app ranks by :func:`uncertainty`."""
    names = rank_uncertain(scores)
    have = [n for n in names if embeddings.get(n) is not None]
    missing = [n for n in names if embeddings.get(n) is None]
    if not have:
        return names
    k = max(1, int(np.ceil(top * len(have))))
    order: list[str] = []
    chosen = None if labelled is None or len(labelled) == 0 else np.asarray(labelled, dtype=np.float32)
    for group in (have[:k], have[k:]):
        if not group:
            continue
        emb = np.stack([np.asarray(embeddings[n], dtype=np.float32) for n in group])
        u = np.array([max(scores[n], 0.0) for n in group], dtype=np.float64)
        u = u / u.max() if u.max() > 0 else np.ones_like(u)
        if chosen is None:
            near = np.full(len(group), np.inf)
        else:
            near = (1.0 - emb @ chosen.T).min(axis=1).astype(np.float64)
        left = np.ones(len(group), dtype=bool)
        for _ in range(len(group)):
            # nothing chosen yet and nothing labelled (every distance infinite): the most uncertain first
            gain = np.where(left, u * np.where(np.isinf(near), 1.0, np.maximum(near, 0.0)), -1.0)
            i = int(np.argmax(gain))  # ties: the earlier (more uncertain, then by name)
            left[i] = False
            order.append(group[i])
            near = np.minimum(near, 1.0 - emb @ emb[i])
        chosen = emb if chosen is None else np.concatenate([chosen, emb])
    return order + missing


def rank_typical(
    embeddings: dict[str, np.ndarray | None],
    labelled: np.ndarray | None = None,
    scores: dict[str, float] | None = None,
    weighted: bool = False,
) -> list[str]:
    """Names in the order to label them: each next photo the one that most adds to how well the photos chosen
    so far, and the ``labelled`` ones (their embeddings, ``N x D``), stand for the whole set: greedy facility
    location on the cosine similarity of :func:`photo_embeddings`, each photo's gain the summed increase of every
    photo's similarity to its nearest chosen or labelled one. The first photo is the set's most typical, the next
    the most typical of what it leaves uncovered, and so on: with few labels, typical photos teach a model more
    than its most uncertain ones (Hacohen et al. 2022, "Active learning on a budget"). Ties go to the higher
    ``scores`` (uncertainty), then by name. Photos without an embedding come last, in ``scores`` order.
    *Label next*'s order in the app since the thirty-seventh session (``bench_loop.py --score typical``;
    docs/RESULTS.md). ``weighted``: each photo's gain in standing for another counts in proportion to that
    other photo's ``scores`` (relative to the largest), so the order stands first for what the model is unsure
    of (``--score typical_doubt``, an experiment)."""
    scores = scores or {}
    names = sorted(embeddings, key=lambda n: (-scores.get(n, 0.0), n))
    have = [n for n in names if embeddings.get(n) is not None]
    missing = [n for n in names if embeddings.get(n) is None]
    if not have:
        return missing
    emb = np.stack([np.asarray(embeddings[n], dtype=np.float32) for n in have])
    sim = np.clip(emb @ emb.T, 0.0, None).astype(np.float64)
    if labelled is not None and len(labelled):
        cover = (
            np.clip(emb @ np.asarray(labelled, dtype=np.float32).T, 0.0, None).max(axis=1).astype(np.float64)
        )
    else:
        cover = np.zeros(len(have))
    weight = np.ones(len(have))
    if weighted:
        u = np.array([max(scores.get(n, 0.0), 0.0) for n in have], dtype=np.float64)
        weight = u / u.max() if u.max() > 0 else weight
    left = np.ones(len(have), dtype=bool)
    order: list[str] = []
    for _ in range(len(have)):
        gain = np.where(left, (np.maximum(sim - cover[None, :], 0.0) * weight[None, :]).sum(axis=1), -1.0)
        i = int(np.argmax(gain))  # ties: the earlier (more uncertain, then by name)
        left[i] = False
        order.append(have[i])
        cover = np.maximum(cover, sim[i])
    return order + missing
