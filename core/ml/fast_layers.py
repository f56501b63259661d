"""Two Keras layers that compute exactly what their parent computes, with the same weights and config, through
TensorFlow ops that train faster on a CPU.

Found by profiling a training step of the default model by op type (``tests/perf/profile_train.py``,
docs/RESULTS.md): the unfused batch norm (moments, then a chain of element-wise ops and their gradients) and the
one-map 3x3 output convolution (oneDNN is slow at a convolution with a single output channel, and slower at its
gradient) were about a quarter of the step. Models saved with them load wherever ``unet`` is imported (as
``modelio.load_model`` does); models saved with the plain layers keep them.
"""

from __future__ import annotations

import keras
from keras import layers, ops

PACKAGE = "viaseg"  # what unet registers its losses and metrics under too


def _tf_backend() -> bool:
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedBatchNormalization(layers.BatchNormalization):
    """``BatchNormalization`` whose training step runs TensorFlow's fused kernel (one op forward, one backward)
    instead of moments and a chain of element-wise ops: the same output, and the same moving statistics (the
    fused kernel's Bessel-corrected variance is converted back to the biased one Keras averages). Inference,
    masks, renorm, other axes or backends fall back to the parent."""

    def _fused_ok(self, inputs, training, mask) -> bool:
        return bool(
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and _tf_backend()
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.scale
            and self.center
            and self.compute_dtype in ("float32", "float16")
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fused_ok(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        y, mean, var_unbiased = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            ops.cast(self.gamma, "float32"),
            ops.cast(self.beta, "float32"),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        shape = tf.shape(inputs)
        n = tf.cast(shape[0] * shape[1] * shape[2], "float32")
        variance = var_unbiased * tf.maximum(n - 1.0, 1.0) / n  # what Keras' moments give (biased)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SingleMapConv2D(layers.Conv2D):
    """``Conv2D`` that, with one output map, convolves each input channel with its own slice of the kernel and sums
    them (a depthwise convolution and a channel sum): the same function and kernel shape ``(kh, kw, C, 1)``,
    about twice as fast to train on a CPU. Other settings fall back to the parent."""

    def convolution_op(self, inputs, kernel):
        if self.filters != 1 or self.groups != 1 or self.rank != 2:
            return super().convolution_op(inputs, kernel)
        out = ops.depthwise_conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        return ops.sum(out, axis=-1 if self.data_format == "channels_last" else 1, keepdims=True)
