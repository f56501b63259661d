"""viaseg export: each format, run by its own runtime, gives the Keras predictor's probabilities."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from viaseg.core.base.errors import ModelError, ViasegError  # noqa: E402
from viaseg.core.cli import main  # noqa: E402
from viaseg.core.ml import export as ex  # noqa: E402
from viaseg.core.ml.modelio import save_model  # noqa: E402
from viaseg.core.ml.predict import Predictor  # noqa: E402

SIZE = 64
ROOT = Path(__file__).resolve().parents[2]
CAR_VAL = ROOT.parent / "shared" / "datasets" / "car-damage" / "val"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
META = {
    "input_size": [SIZE, SIZE],
    "threshold": 0.4,
    "class_names": ["damage"],
    "resize": "area",
    "input_scale": "rgb/255",
    # the mirror and two other sizes (32 and 96 px): the averaged graph, as `viaseg predict` runs it
    "tta": True,
    "tta_scales": [0.5, 1.0, 1.5],
    "config": {"preset": "test", "size": SIZE, "seed": 7, "loss": "bce_dice"},
}
# float16 / dynamic-range int8 weights: the stated tolerances of docs/deploy.md
TOLERANCE = {"none": 1e-4, "float16": 5e-3, "int8": 5e-2}


def micro_unet(size: int = SIZE) -> keras.Model:
    """One of each layer the viaseg U-Net uses (strided conv, BatchNorm with non-trivial statistics,
    separable conv, max-pool, transposed conv, upsampling, residual add, sigmoid head), small enough to
    convert in seconds; one 3x3x32x32 kernel is large enough for TFLite to quantize."""
    L = keras.layers
    keras.utils.set_random_seed(0)  # the same weights every run: which pixels sit at the threshold is fixed
    inp = keras.Input((size, size, 3), name="image")
    x = L.Conv2D(32, 3, strides=2, padding="same")(inp)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    skip = x
    x = L.SeparableConv2D(32, 3, padding="same")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = L.Conv2DTranspose(32, 3, padding="same")(x)
    x = L.UpSampling2D(2)(x)
    x = L.Add()([x, skip])
    x = L.UpSampling2D(2)(x)
    out = L.Conv2D(1, 3, padding="same", activation="sigmoid", name="mask")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    bn = next(la for la in model.layers if isinstance(la, L.BatchNormalization))
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([gamma * 1.3, beta + 0.1, rng.normal(0, 0.2, mean.shape), 0.5 + rng.random(var.shape)])
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return save_model(micro_unet(), tmp_path_factory.mktemp("export") / "tiny.keras", META)


@pytest.fixture(scope="module")
def keras_predictor(model_path) -> Predictor:
    """The Keras network as saved (exports are of it); the app's batch-norm-folded copy gives the same maps to
    ~1e-4 (test_unet_mobilenet), which can flip a pixel that sits at the threshold."""
    pred = Predictor.load(model_path, cache=False)
    pred.fold_batch_norms = False
    return pred


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return ex.check_images((SIZE, SIZE), n=3)


@pytest.fixture(scope="module")
def plain_predictor(model_path) -> Predictor:
    """The same model with no averaging (``--tta none``): one network pass."""
    return ex._predictor(model_path, "none")


@pytest.fixture(scope="module")
def exported(model_path, tmp_path_factory):
    """Exports made once per (format, quantize, tta), lazily. The quantized TFLite files are made without the
    averages (``tta="none"``: quantization does not depend on them, and the test file stays fast)."""
    out_dir = tmp_path_factory.mktemp("out")
    made: dict[tuple[str, str, str], ex.ExportResult] = {}

    def get(fmt: str, quantize: str = "none", tta: str = "model") -> ex.ExportResult:
        if (fmt, quantize, tta) not in made:
            # the SavedModel straight into a version folder whose parents do not exist yet (docs/deploy.md)
            name = {
                "savedmodel": "serving/damage/1",
                "tflite": f"m_{quantize}_{tta}.tflite",
                "onnx": "m.onnx",
            }[fmt]
            made[fmt, quantize, tta] = ex.export_model(model_path, out_dir / name, fmt, quantize, tta=tta)
        return made[fmt, quantize, tta]

    return get


def test_savedmodel_serving_default_takes_the_rest_payload(exported, keras_predictor, images):
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    res = exported("savedmodel")
    # TensorFlow Serving loads the meta graph tagged "serve" and calls its "serving_default" signature
    proto = saved_model_pb2.SavedModel.FromString((Path(res.path) / "saved_model.pb").read_bytes())
    graphs = [g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags]
    assert len(graphs) == 1 and "serving_default" in graphs[0].signature_def
    assert (Path(res.path) / "variables").is_dir()
    sig = tf.saved_model.load(str(res.path), tags=["serve"]).signatures["serving_default"]
    spec = sig.structured_input_signature[1]["image"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, SIZE, SIZE, 3]
    assert list(sig.structured_outputs) == ["probabilities"]
    # TensorFlow Serving's REST body {"instances": [...]} is this signature's input, one image per instance
    body = json.loads(json.dumps({"instances": images.tolist()}))
    got = sig(image=tf.constant(np.array(body["instances"], np.uint8)))["probabilities"].numpy()
    want = keras_predictor.predict_inputs(images)
    assert got.shape == (3, SIZE, SIZE) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4
    assert 0.0 <= got.min() and got.max() <= 1.0 and got.std() > 1e-3  # a map, not a constant


@pytest.mark.parametrize("quantize", ["none", "float16", "int8"])
def test_tflite_matches_keras_within_the_stated_tolerance(
    exported, keras_predictor, plain_predictor, images, quantize
):
    tta = "model" if quantize == "none" else "none"
    res = exported("tflite", quantize, tta)
    got = ex.run_tflite(res.path, images)
    want = (keras_predictor if tta == "model" else plain_predictor).predict_inputs(images)
    diff = np.abs(got - want).max()
    assert diff < TOLERANCE[quantize], diff
    assert res.max_abs_diff is not None and res.max_abs_diff < TOLERANCE[quantize]
    interp, _ = ex._tflite_interpreter(str(res.path))  # LiteRT, else tf.lite
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.uint8 and list(inp["shape"]) == [1, SIZE, SIZE, 3]
    assert out["dtype"] == np.float32 and list(out["shape"]) == [1, SIZE, SIZE]
    weight_types = {d["dtype"] for d in interp.get_tensor_details()}
    expected = {"none": np.float32, "float16": np.float16, "int8": np.int8}[quantize]
    assert expected in weight_types
    if quantize == "none":
        assert np.int8 not in weight_types and np.float16 not in weight_types


def test_onnx_runs_in_onnxruntime_like_keras(exported, keras_predictor, images):
    import onnx
    import onnxruntime as ort

    res = exported("onnx")
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("image", "tensor(uint8)", [SIZE, SIZE, 3])
    assert (out.name, out.type) == ("probabilities", "tensor(float)")
    got = sess.run(["probabilities"], {"image": images})[0]
    assert np.abs(got - keras_predictor.predict_inputs(images)).max() < 1e-4
    one = sess.run(["probabilities"], {"image": images[1:2]})[0]  # any batch size
    assert np.abs(one[0] - got[1]).max() < 1e-5
    props = {p.key: p.value for p in onnx.load(str(res.path)).metadata_props}
    assert json.loads(props["viaseg"])["threshold"] == pytest.approx(0.4)


def test_metadata_json_beside_each_export(exported, model_path):
    for fmt, where in (
        ("onnx", lambda p: p.with_name(p.name + ".json")),
        ("savedmodel", lambda p: p / "viaseg.json"),
    ):
        res = exported(fmt)
        assert res.meta_path == where(res.path) == ex.meta_path(res.path, fmt)
        meta = json.loads(res.meta_path.read_text(encoding="utf-8"))
        assert meta["format"] == fmt and meta["quantize"] == "none"
        assert meta["input_size"] == [SIZE, SIZE] and meta["threshold"] == pytest.approx(0.4)
        assert meta["class_names"] == ["damage"] and meta["foreground"] == "damage"
        assert meta["resize"] == "area" and meta["input_scale"] == "rgb/255"
        assert meta["input"] == {
            **meta["input"],
            "name": "image",
            "dtype": "uint8",
            "shape": [None, SIZE, SIZE, 3],
        }
        assert meta["output"]["name"] == "probabilities" and meta["output"]["shape"] == [None, SIZE, SIZE]
        assert meta["config"] == META["config"]  # the training config the model carries
        assert meta["mirror_average"] is True and meta["scales"] == [[64, 64], [32, 32], [96, 96]]
        assert meta["model_meta"]["tta_scales"] == META["tta_scales"]
        assert meta["check"]["max_abs_diff"] < 1e-4 and meta["source_model"] == str(model_path)
    # no temporary files left next to the exports
    assert not [p for p in exported("onnx").path.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(not CAR_VAL.is_dir(), reason=f"{CAR_VAL} not present")
def test_real_photos_at_full_resolution(exported, keras_predictor):
    photos = sorted(p for p in CAR_VAL.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:3]
    assert len(photos) == 3
    runs = {fmt: exported(fmt).path for fmt in ("onnx", "tflite", "savedmodel")}
    for photo in photos:
        want = keras_predictor.predict(photo)
        x, size = ex.network_input(keras_predictor, photo)
        for fmt, path in runs.items():
            got = ex.full_resolution(keras_predictor, ex.RUNNERS[fmt](path, x[None])[0], size)
            assert got.shape == want.shape
            assert np.abs(got - want).max() < 1e-4, (fmt, photo.name)


def _doc_programs() -> list[str]:
    """The Python programs of docs/deploy.md: onnxruntime, TFLite runtime, TensorFlow Serving client."""
    return re.findall(r"```python\n(.*?)```", DEPLOY_DOC.read_text(encoding="utf-8"), re.S)


def test_deploy_doc_programs_give_viaseg_mask(exported, keras_predictor, tmp_path, monkeypatch, capsys):
    import cv2
    import tensorflow as tf

    programs = _doc_programs()
    assert len(programs) == 3 and all(len(p.strip().splitlines()) < 25 for p in programs)
    photos = sorted(CAR_VAL.glob("*.jp*g")) if CAR_VAL.is_dir() else []
    if photos:
        photo = photos[0]
    else:  # a PNG photo-like image when ../shared is absent
        photo = tmp_path / "photo.png"
        cv2.imwrite(str(photo), cv2.resize(ex.check_images((SIZE, SIZE), 1)[0], (300, 200))[..., ::-1])
    onnx_res, tfl_res, sm_res = exported("onnx"), exported("tflite"), exported("savedmodel")
    for res, name in ((onnx_res, "damage.onnx"), (tfl_res, "damage.tflite")):
        shutil.copy(res.path, tmp_path / name)
        shutil.copy(res.meta_path, tmp_path / (name + ".json"))
    shutil.copytree(sm_res.path, tmp_path / "serving" / "damage" / "1")

    sig = tf.saved_model.load(str(tmp_path / "serving" / "damage" / "1")).signatures["serving_default"]
    posted = []

    class Reply:  # TensorFlow Serving's REST answer, row format: {"predictions": [one output per instance]}
        def __init__(self, body):
            x = tf.constant(np.array(json.loads(json.dumps(body))["instances"], np.uint8))
            self.body = {"predictions": sig(image=x)["probabilities"].numpy().tolist()}

        def json(self):
            return self.body

    def post(url, json=None, timeout=None):
        posted.append((url, json["signature_name"]))
        return Reply(json)

    monkeypatch.setitem(sys.modules, "requests", type(sys)("requests"))
    sys.modules["requests"].post = post
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["program", str(photo)])
    want = keras_predictor.predict(photo).mask()
    for program in programs:
        if "ai_edge_litert" in program and importlib.util.find_spec("ai_edge_litert") is None:
            continue  # no LiteRT wheel for this platform
        (tmp_path / "mask.png").unlink(missing_ok=True)
        exec(compile(program, str(DEPLOY_DOC), "exec"), {"__name__": "__main__"})
        assert "damage:" in capsys.readouterr().out
        got = cv2.imread(str(tmp_path / "mask.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert got.shape == want.shape
        assert np.mean(got != want) < 0.002, np.mean(got != want)
    assert posted == [("http://localhost:8501/v1/models/damage:predict", "serving_default")]


# ------------------------------------------------------------------------------------------- refusals


def test_missing_and_foreign_model_files_are_named(tmp_path):
    missing = tmp_path / "nothing.keras"
    with pytest.raises(ModelError, match="nothing.keras: no such model file"):
        ex.export_model(missing, tmp_path / "m.onnx", "onnx")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a zip", encoding="utf-8")
    with pytest.raises(ModelError, match="junk.keras: not a .keras model file"):
        ex.export_model(junk, tmp_path / "m.onnx", "onnx")
    plain = tmp_path / "plain.keras"
    inp = keras.Input((16, 16, 3))
    keras.Model(inp, keras.layers.Conv2D(1, 1)(inp)).save(plain)
    with pytest.raises(ModelError, match="plain.keras: not a viaseg model"):
        ex.export_model(plain, tmp_path / "m.onnx", "onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.keras", "plain.keras"]


def test_bad_options_and_outputs_are_refused_before_any_work(model_path, tmp_path):
    with pytest.raises(ex.ExportError, match="unknown export format 'pt'"):
        ex.export_model(model_path, tmp_path / "m.pt", "pt")
    with pytest.raises(ex.ExportError, match="int8 applies to --to tflite only"):
        ex.export_model(model_path, tmp_path / "m.onnx", "onnx", quantize="int8")
    with pytest.raises(ex.ExportError, match="unknown quantization 'int4'"):
        ex.export_model(model_path, tmp_path / "m.tflite", "tflite", quantize="int4")
    (tmp_path / "plainfile").write_text("x", encoding="utf-8")
    with pytest.raises(ex.ExportError, match=r"plainfile is not a folder"):
        ex.export_model(model_path, tmp_path / "plainfile" / "sub" / "m.onnx", "onnx")
    assert not (tmp_path / "no_dir").exists()
    (tmp_path / "adir").mkdir()
    with pytest.raises(ex.ExportError, match="adir: is a folder"):
        ex.export_model(model_path, tmp_path / "adir", "tflite")
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(ex.ExportError, match="afile: exists and is a file"):
        ex.export_model(model_path, tmp_path / "afile", "savedmodel")
    (tmp_path / "adir" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ex.ExportError, match="holds no SavedModel; not replaced"):
        ex.export_model(model_path, tmp_path / "adir", "savedmodel")
    assert (tmp_path / "adir" / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_an_export_never_replaces_the_model_or_a_file_it_did_not_write(model_path, tmp_path):
    """``--out`` the model itself replaced the trained model with a TFLite file; ``--out
    train/via_region_data --to tflite`` replaced the annotation file with the export's metadata (exit 0)."""
    import shutil

    model = tmp_path / "copy.keras"
    shutil.copyfile(model_path, model)
    kept = model.read_bytes()
    for fmt in ("tflite", "onnx"):
        with pytest.raises(ex.ExportError, match="is the model being exported"):
            ex.export_model(model, model, fmt)
    via = tmp_path / "via_region_data.json"
    via.write_text('{"a.jpg1": {}}', encoding="utf-8")
    with pytest.raises(ex.ExportError, match="not the metadata of an earlier export; not replaced"):
        ex.export_model(model, tmp_path / "via_region_data", "tflite")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    with pytest.raises(ex.ExportError, match="is not a .onnx file; not replaced"):
        ex.export_model(model, photo, "onnx")
    assert model.read_bytes() == kept and via.read_text(encoding="utf-8") == '{"a.jpg1": {}}'
    assert photo.read_bytes() == b"\xff\xd8 a photo"


def test_models_and_exports_are_readable_by_others_as_the_umask_allows(model_path, tmp_path):
    """mkstemp made model.keras and every export 0600: a model shared on a server could not be read."""
    import os
    import stat

    umask = os.umask(0o022)
    try:
        saved = save_model(micro_unet(), tmp_path / "m.keras", META)
        res = ex.export_model(model_path, tmp_path / "m.tflite", "tflite", tta="none", check=False)
    finally:
        os.umask(umask)
    for p in (saved, res.path, res.meta_path):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, (p, oct(p.stat().st_mode))


def test_cli_reports_errors_without_traceback(model_path, tmp_path, capsys):
    assert (
        main(["export", str(tmp_path / "gone.keras"), "--to", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    )
    err = capsys.readouterr().err
    assert "viaseg export: error:" in err and "gone.keras" in err and "Traceback" not in err
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    out = tmp_path / "a_file" / "nowhere" / "m.tflite"
    assert main(["export", str(model_path), "--to", "tflite", "--out", str(out)]) == 2
    assert "a_file is not a folder" in capsys.readouterr().err
    assert main(["export", str(model_path), "--to", "onnx", "--out", f"{tmp_path / 'new_dir'}/"]) == 2
    assert "names a folder" in capsys.readouterr().err and not (tmp_path / "new_dir").exists()
    with pytest.raises(SystemExit) as exc:
        main(["export", str(model_path), "--to", "caffe", "--out", str(tmp_path / "m")])
    assert exc.value.code == 2 and "invalid choice: 'caffe'" in capsys.readouterr().err
    assert issubclass(ex.ExportError, ViasegError)


def test_cli_export_without_averages_is_one_plain_pass(model_path, tmp_path, capsys, images):
    out = tmp_path / "cli.tflite"
    assert (
        main(["export", str(model_path), "--to", "tflite", "--tta", "none", "--out", str(out), "--json"]) == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["path"] == str(out) and res["format"] == "tflite" and res["quantize"] == "none"
    assert res["size_bytes"] == out.stat().st_size and res["max_abs_diff"] < 1e-4
    meta = json.loads(Path(res["meta_path"]).read_text(encoding="utf-8"))
    assert meta["tta"] == "none" and meta["mirror_average"] is False and meta["scales"] == [[SIZE, SIZE]]
    net = Predictor.load(model_path).model
    want = net(images.astype(np.float32) / 255.0, training=False).numpy()[..., 0]
    assert np.abs(ex.run_tflite(out, images) - want).max() < 1e-4
