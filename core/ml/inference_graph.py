"""A faster copy of a trained network for prediction: each batch norm that follows a convolution is folded into it.

At inference a batch norm is an affine map per channel, ``y = s * (x - mean) + beta`` with
``s = gamma / sqrt(var + eps)``; after a convolution without an activation it equals the same convolution with its
kernel scaled by ``s`` per output channel and a bias ``beta + s * (b - mean)``. TensorFlow does not do this for a
Keras model (its weights are variables, not constants), so every batch norm costs a pass over its activations
(the MobileNetV2 U-Net at 256 px, batch 2, on a 2-core CPU: 48.9 ms a forward pass, 44.6 ms folded). The folded copy computes the same function
(float32; tests compare the outputs) with one op fewer per convolution.
"""

from __future__ import annotations

import copy

import numpy as np

_CONVS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")


def _bn_scale_shift(bn) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.gamma is not None else np.ones_like(mean)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.beta is not None else np.zeros_like(mean)
    s = gamma / np.sqrt(var + bn.epsilon)
    return s, beta - s * mean


def _foldable_pairs(model) -> dict[str, str]:
    """batch-norm layer name -> the convolution it folds into: a float32 convolution whose only consumer it is,
    normalising the last axis."""
    import keras

    by_name = {layer.name: layer for layer in model.layers}
    consumers: dict[str, int] = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                producer = t._keras_history.operation
                consumers[producer.name] = consumers.get(producer.name, 0) + 1
    for t in model.outputs:
        producer = t._keras_history.operation
        consumers[producer.name] = consumers.get(producer.name, 0) + 1
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        if layer.axis not in (-1, [-1], 3, [3]) or layer.compute_dtype != "float32":
            continue
        inputs = layer._inbound_nodes[0].input_tensors
        if len(inputs) != 1:
            continue
        conv = inputs[0]._keras_history.operation
        if (
            type(conv).__name__ in _CONVS
            and conv.name in by_name
            and by_name[conv.name] is conv
            and conv.compute_dtype == "float32"
            and consumers.get(conv.name) == 1
            and len(conv._inbound_nodes) == 1
            and conv.get_config().get("activation") in ("linear", None)
        ):
            pairs[layer.name] = conv.name
    return pairs


def fold_batch_norms(model):
    """``(folded_model, n)``: a copy of ``model`` (a Keras functional model) with ``n`` batch norms folded into
    the convolutions before them; ``(model, 0)`` when there is nothing to fold."""
    import keras

    pairs = _foldable_pairs(model)
    if not pairs:
        return model, 0
    convs = set(pairs.values())
    cfg = copy.deepcopy(model.get_config())
    for entry in cfg["layers"]:
        name = entry.get("name") or entry["config"].get("name")
        if name in pairs:
            entry["module"] = "keras.layers"
            entry["class_name"] = "Identity"
            entry["registered_name"] = None
            entry["config"] = {"name": name, "trainable": False, "dtype": entry["config"].get("dtype")}
            entry.pop("build_config", None)
            for node in entry.get("inbound_nodes") or []:
                if isinstance(node, dict):
                    node["kwargs"] = {}  # a batch norm's call takes training/mask; Identity takes neither
        elif name in convs:
            entry["config"]["use_bias"] = True
            entry.pop("build_config", None)
    folded = keras.Model.from_config(cfg)
    by_name = {layer.name: layer for layer in model.layers}
    conv_bn = {conv: by_name[bn] for bn, conv in pairs.items()}
    for layer in folded.layers:
        src = by_name[layer.name]
        if layer.name in pairs:
            continue
        if layer.name not in conv_bn:
            if src.weights:
                layer.set_weights(src.get_weights())
            continue
        s, shift = _bn_scale_shift(conv_bn[layer.name])
        kind = type(src).__name__
        ws = [np.asarray(w, np.float64) for w in src.get_weights()]
        bias = ws[-1] if src.use_bias else np.zeros_like(s)
        if kind == "DepthwiseConv2D":
            kernel = ws[0]  # (kh, kw, in, multiplier): output channel c * multiplier + m
            kernel = kernel * s.reshape(kernel.shape[2], kernel.shape[3])
            new = [kernel]
        elif kind == "SeparableConv2D":
            new = [ws[0], ws[1] * s]  # depthwise kernel as is, pointwise (1, 1, in, out) scaled
        else:
            new = [ws[0] * s]
        new.append(s * bias + shift)
        layer.set_weights([w.astype(np.float32) for w in new])
    return folded, len(pairs)
