"""Regenerate tests/data/tflite/*.tflite: small Keras models converted by TensorFlow's
TFLiteConverter with full-integer quantisation, as users bring them.

The fixtures are inputs to tests/test_tflite_import.py (which compares msfsim with the TFLM
interpreter on them); they are committed so the tests need no TensorFlow. Run it with a
TensorFlow install outside the project venv, e.g.

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python scripts/make_tflite_fixtures.py [NAME ...]

(names: only those fixtures; the seeds depend on each fixture's place in the list, so the
others are not rewritten).

Weights, biases and the representative dataset are drawn from fixed seeds; the converter's
version is printed (the files were last written with TensorFlow 2.21.0).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras = tf.keras
L = keras.layers
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "tflite"
SEED = 1234


def lenet(batch: int | None) -> keras.Model:
    """conv / max pool / dense with Flatten (dynamic batch: the converter emits the
    SHAPE / STRIDED_SLICE / PACK / RESHAPE chain for Flatten)."""
    x = inp = keras.Input((28, 28, 1), batch_size=batch)
    x = L.Conv2D(6, 5, padding="same", activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(16, 5, activation="relu")(x)
    x = L.MaxPooling2D(2, padding="same")(x)
    x = L.Flatten()(x)
    x = L.Dense(32, activation="relu")(x)
    x = L.Dense(10)(x)
    return keras.Model(inp, x, name="lenet")


def mbv2_block() -> keras.Model:
    """MobileNetV2-like: stem, expand 1x1, ZeroPadding2D + depthwise (the converter folds
    that PAD into SAME), project 1x1, residual ADD, an asymmetric ZeroPadding2D (a PAD in the
    file) before a strided depthwise, GlobalAveragePooling2D (MEAN), dense."""
    x = inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.Conv2D(8, 3, strides=2, padding="same")(x)
    x = L.BatchNormalization()(x)
    s = x = L.ReLU(6.0)(x)
    x = L.Conv2D(24, 1, activation="relu6")(x)
    x = L.ZeroPadding2D(1)(x)
    x = L.DepthwiseConv2D(3, activation="relu6")(x)
    x = L.Conv2D(8, 1)(x)
    x = L.Add()([s, x])
    x = L.ZeroPadding2D(((1, 0), (1, 0)))(x)  # not SAME's (0, 1): stays a PAD in the file
    x = L.DepthwiseConv2D(3, strides=2, activation="relu")(x)
    x = L.Conv2D(16, 1, activation="relu6")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(10)(x)
    return keras.Model(inp, x, name="mbv2_block")


def dscnn() -> keras.Model:
    """DS-CNN-like (keyword spotting): a strided stem, depthwise-separable blocks, an
    AveragePooling2D with SAME padding (the divisor counts only the taps inside), one over the
    whole map, dense."""
    x = inp = keras.Input((49, 10, 1), batch_size=1)
    x = L.Conv2D(16, (10, 4), strides=(2, 2), padding="same", activation="relu")(x)
    for _ in range(2):
        x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = L.Conv2D(16, 1, activation="relu")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same")(x)
    x = L.AveragePooling2D(x.shape[1:3])(x)
    x = L.Flatten()(x)
    x = L.Dense(12)(x)
    return keras.Model(inp, x, name="dscnn")


def unsupported() -> keras.Model:
    """Two convolutions joined by a CONCATENATION (along channels, same quantisation); also
    converted unquantised (float32, which msfsim refuses). The Keras name is kept from when
    msfsim refused CONCATENATION, so that the files stay byte-identical."""
    x = inp = keras.Input((8, 8, 2), batch_size=1)
    a = L.Conv2D(4, 3, padding="same")(x)
    b = L.Conv2D(4, 1)(x)
    x = L.Concatenate()([a, b])
    x = L.Conv2D(4, 1)(x)
    return keras.Model(inp, x, name="unsupported")


def mbv3_small() -> keras.Model:
    """MobileNetV3-small-like: a hard-swish stem, a strided depthwise with a squeeze-and-excite
    block (GlobalAveragePooling2D -> Dense relu -> Dense hard_sigmoid -> Multiply, the scale
    broadcast over H and W: the converter folds hard_sigmoid's +3 into the bias, a RELU6 and a
    MUL by 1/6), an inverted residual with hard-swish and a residual ADD, a head. HARD_SWISH,
    MUL (broadcast, and by a constant scalar) and the ops the other fixtures have."""
    def se(x, c, r):
        s = L.GlobalAveragePooling2D(keepdims=True)(x)
        s = L.Dense(r, activation="relu")(s)
        s = L.Dense(c, activation="hard_sigmoid")(s)
        return L.Multiply()([x, s])

    x = inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.Conv2D(16, 3, strides=2, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.Activation("hard_swish")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = se(x, 16, 8)
    s = x = L.Conv2D(16, 1)(x)
    x = L.Conv2D(48, 1)(x)
    x = L.Activation("hard_swish")(x)
    x = L.DepthwiseConv2D(5, padding="same")(x)
    x = L.Activation("hard_swish")(x)
    x = se(x, 48, 16)
    x = L.Conv2D(16, 1)(x)
    x = L.Add()([s, x])
    x = L.Conv2D(32, 1)(x)
    x = L.Activation("hard_swish")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(10)(x)
    return keras.Model(inp, x, name="mbv3_small")


def sigmoid_net() -> keras.Model:
    """LOGISTIC on the network input (every int8 value reaches it), a conv, swish written as
    x * sigmoid(x) (a same-shape MUL), hard-swish on a second branch joined by an ADD, TANH."""
    x = inp = keras.Input((12, 12, 4), batch_size=1)
    x = L.Activation("sigmoid")(x)
    x = L.Conv2D(8, 3, padding="same")(x)
    x = L.Multiply()([x, L.Activation("sigmoid")(x)])
    y = L.Activation("hard_swish")(L.Conv2D(8, 1)(x))
    x = L.Add()([x, y])
    x = L.Conv2D(4, 3, strides=2)(x)
    x = L.Activation("tanh")(x)
    return keras.Model(inp, x, name="sigmoid_net")


def unary(act: str, scale: float):
    """One activation on the (16, 16, 1) input: fed the 256 int8 values, the output is the
    whole table TFLM's kernel computes. `scale` widens the input range (its quantisation)."""
    def make() -> keras.Model:
        x = inp = keras.Input((16, 16, 1), batch_size=1)
        x = L.Activation(act)(L.Rescaling(scale)(x))
        return keras.Model(inp, x, name=f"{act}_table")
    return make


def softmax_net() -> keras.Model:
    """A small classifier ending in Softmax (the converter's SOFTMAX, output 1/256, -128):
    conv, a depthwise-separable block, GlobalAveragePooling2D, dense relu, dense, softmax."""
    x = inp = keras.Input((16, 16, 3), batch_size=1)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = L.Conv2D(16, 1, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(24, activation="relu")(x)
    x = L.Dense(10)(x)
    x = L.Softmax()(x)
    return keras.Model(inp, x, name="softmax_net")


def broadcast_add() -> keras.Model:
    """ADD with a (1, 1, C) operand broadcast over H and W: x + Dense(GAP(x)) (a per-channel
    vector computed from the input, second operand) and GAP(y) + y (the broadcast operand
    first), then a conv."""
    x = inp = keras.Input((12, 12, 4), batch_size=1)
    x = L.Conv2D(8, 3, padding="same", activation="relu")(x)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Dense(8)(s)
    x = L.Add()([x, s])
    y = L.Conv2D(8, 3, strides=2, padding="same")(x)
    g = L.GlobalAveragePooling2D(keepdims=True)(y)
    y = L.Add()([g, y])
    y = L.Conv2D(6, 1)(y)
    return keras.Model(inp, y, name="broadcast_add")


def dw_multiplier() -> keras.Model:
    """DepthwiseConv2D with depth_multiplier > 1: on a 1-channel input (1 -> 4 channels) and
    with multiplier 2 on 4 channels (strided, SAME), then a 1x1 conv."""
    x = inp = keras.Input((12, 12, 1), batch_size=1)
    x = L.DepthwiseConv2D(3, depth_multiplier=4, padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same")(x)
    x = L.Conv2D(6, 1, activation="relu6")(x)
    return keras.Model(inp, x, name="dw_multiplier")


def mobilenet_v1() -> keras.Model:
    """keras.applications.MobileNet as Keras writes it: alpha 0.25, 96x96x3, 3 classes, its
    head GlobalAveragePooling2D(keepdims) -> Dropout -> Conv2D 1x1 -> Reshape -> softmax."""
    return keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None,
                                        classes=3, classifier_activation="softmax")


def mobilenet_v2() -> keras.Model:
    """keras.applications.MobileNetV2: alpha 0.2 (at 0.35 the file is 640 KB: the last
    1x1 convolution keeps 1280 channels), 96x96x3, 3 classes, softmax."""
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.2, weights=None,
                                          classes=3, classifier_activation="softmax")


def mobilenet_v3_small() -> keras.Model:
    """keras.applications.MobileNetV3Small (not minimalistic), alpha 0.2 (the head's 1x1
    convolution to 1024 channels stays; at 0.25 the file is 418 KB), 96x96x3, 3
    classes, softmax, with its preprocessing Rescaling (x / 127.5 - 1) on the input; its
    hard_sigmoid is ReLU6(x + 3) * (1 / 6) (Keras ops), hard-swish an Activation."""
    return keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), alpha=0.2,
                                               weights=None, classes=3, dropout_rate=0.2,
                                               classifier_activation="softmax")


def resnet8() -> keras.Model:
    """ResNet-8 of MLPerf Tiny (image classification, CIFAR-10): conv 16, three stacks of two
    3x3 convolutions with a residual ADD (1x1 stride-2 shortcut convolutions in the second and
    third), AveragePooling2D over the 8x8 map, Flatten, Dense 10, softmax."""
    def bn_relu(x, relu=True):
        x = L.BatchNormalization()(x)
        return L.Activation("relu")(x) if relu else x

    x = inp = keras.Input((32, 32, 3), batch_size=1)
    x = bn_relu(L.Conv2D(16, 3, padding="same")(x))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = bn_relu(L.Conv2D(filters, 3, strides=stride, padding="same")(x))
        y = bn_relu(L.Conv2D(filters, 3, padding="same")(y), relu=False)
        if stride != 1:
            x = L.Conv2D(filters, 1, strides=stride, padding="same")(x)
        x = L.Activation("relu")(L.Add()([x, y]))
    x = L.AveragePooling2D(int(min(x.shape[1:3])))(x)
    x = L.Flatten()(x)
    x = L.Dense(10, activation="softmax")(x)
    return keras.Model(inp, x, name="resnet8")


def inception() -> keras.Model:
    """An Inception-style CNN: a stem, two inception blocks (1x1; 1x1 -> 3x3; 1x1 -> 3x3 ->
    3x3 in place of 5x5 in the second, a 5x5 in the first; 3x3 max pool -> 1x1 pool
    projection) joined by Concatenate, a strided max pool between them,
    GlobalAveragePooling2D, Dense, softmax."""
    def block(x, c1, c3r, c3, c5r, c5, cp, five=True):
        a = L.Conv2D(c1, 1, activation="relu")(x)
        b = L.Conv2D(c3r, 1, activation="relu")(x)
        b = L.Conv2D(c3, 3, padding="same", activation="relu")(b)
        c = L.Conv2D(c5r, 1, activation="relu")(x)
        if five:
            c = L.Conv2D(c5, 5, padding="same", activation="relu")(c)
        else:
            c = L.Conv2D(c5, 3, padding="same", activation="relu")(c)
            c = L.Conv2D(c5, 3, padding="same", activation="relu")(c)
        d = L.MaxPooling2D(3, strides=1, padding="same")(x)
        d = L.Conv2D(cp, 1, activation="relu")(d)
        return L.Concatenate()([a, b, c, d])

    x = inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = block(x, 8, 8, 16, 4, 8, 8)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    x = block(x, 16, 12, 24, 4, 8, 8, five=False)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(10, activation="softmax")(x)
    return keras.Model(inp, x, name="inception")


def hard_sigmoid_table() -> keras.Model:
    """MobileNetV3's hard_sigmoid as Keras writes it, ReLU6(x + 3) * (1 / 6), on the (16, 16,
    1) input: an ADD of a constant scalar (ReLU6 fused) and a MUL by one, which fed the 256
    int8 values output TFLM's whole table."""
    x = inp = keras.Input((16, 16, 1), batch_size=1)
    x = L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)
    return keras.Model(inp, x, name="hard_sigmoid_table")


def per_channel_add() -> keras.Model:
    """An ADD of a per-channel constant after a max pool (the converter cannot fold it into
    a convolution's bias): a table per channel."""
    x = inp = keras.Input((8, 8, 4), batch_size=1)
    x = L.MaxPooling2D(2)(x) + np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    x = L.Conv2D(4, 1)(x)
    return keras.Model(inp, x, name="per_channel_add")


def keras_normalization() -> keras.Model:
    """keras.layers.Normalization on the input (per-channel mean and variance): the
    converter writes SUB and MUL of per-channel constants; then a conv, a BatchNormalization
    after an Add (MUL and ADD of per-channel constants, ReLU fused into the ADD), a classifier."""
    x = inp = keras.Input((16, 16, 3), batch_size=1)
    x = L.Normalization(mean=[0.4, -0.2, 0.1], variance=[0.2, 0.5, 1.5])(x)
    a = L.Conv2D(8, 3, padding="same")(x)
    b = L.Conv2D(8, 1)(x)
    x = L.ReLU()(L.BatchNormalization()(L.Add()([a, b])))
    x = L.Dense(4)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inp, x, name="keras_normalization")


def prelu_net() -> keras.Model:
    """PReLU with an alpha per channel (shared_axes=[1, 2]) and with one alpha (shared over
    every axis), alphas negative, zero and above 1; GlobalMaxPooling2D (REDUCE_MAX) and
    ReLU(max_value=4) (MINIMUM by a constant, then RELU)."""
    x = inp = keras.Input((12, 12, 3), batch_size=1)
    x = L.Conv2D(8, 3, padding="same")(x)
    alphas = keras.initializers.RandomUniform(-0.5, 1.5)
    x = L.PReLU(shared_axes=[1, 2], alpha_initializer=alphas)(x)
    x = L.Conv2D(8, 3, padding="same")(x)
    x = L.PReLU(shared_axes=[1, 2, 3], alpha_initializer=keras.initializers.Constant(0.3))(x)
    x = L.ReLU(max_value=4.0)(L.Conv2D(8, 3, padding="same")(x))
    x = L.Dense(4)(L.GlobalMaxPooling2D()(x))
    return keras.Model(inp, x, name="prelu_net")


def conv1d_kws() -> keras.Model:
    """A keyword-spotting Conv1D model on 49 frames of 10 MFCCs: the converter reshapes the
    (1, 49, 10) sequence to (1, 1, 49, 10) around each CONV_2D and MAX_POOL_2D; a
    GlobalMaxPooling1D (REDUCE_MAX over the frames) and a GlobalAveragePooling1D (MEAN)."""
    x = inp = keras.Input((49, 10), batch_size=1)
    x = L.Conv1D(16, 3, padding="same", activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(16, 3, activation="relu")(x)
    y = L.Concatenate()([L.GlobalMaxPooling1D()(x), L.GlobalAveragePooling1D()(x)])
    return keras.Model(inp, L.Dense(4)(y), name="conv1d_kws")


def subtract() -> keras.Model:
    """keras.layers.Subtract of two activations: SUB, which msfsim refuses."""
    x = inp = keras.Input((8, 8, 3), batch_size=1)
    y = L.Subtract()([L.Conv2D(4, 3, padding="same")(x), L.Conv2D(4, 1)(x)])
    return keras.Model(inp, L.Conv2D(4, 1)(y), name="subtract")


def grouped_pad_pool() -> keras.Model:
    """DenseNet's stem (Conv2D, ReLU, ZeroPadding2D, MaxPooling2D 3 / 2: a PAD before the
    MAX_POOL_2D) and a grouped Conv2D (groups=2: CONV_2D weights of half the input
    channels)."""
    x = inp = keras.Input((15, 15, 3), batch_size=1)
    x = L.ReLU()(L.Conv2D(8, 3, padding="same")(x))
    x = L.MaxPooling2D(3, strides=2)(L.ZeroPadding2D(1)(x))
    x = L.Conv2D(8, 3, groups=2, padding="same", activation="relu")(x)
    x = L.Conv2D(6, 1, groups=2)(x)
    return keras.Model(inp, L.Dense(4)(L.GlobalAveragePooling2D()(x)), name="grouped_pad_pool")


def pad_before_pool() -> keras.Model:
    """ZeroPadding2D before MaxPooling2D on values that may lie below the zero point (no
    ReLU): the padded zeros would win some maxima, which msfsim refuses."""
    x = inp = keras.Input((8, 8, 3), batch_size=1)
    x = L.MaxPooling2D(3, strides=2)(L.ZeroPadding2D(1)(L.Conv2D(4, 3, padding="same")(x)))
    return keras.Model(inp, L.Conv2D(4, 1)(x), name="pad_before_pool")


def micro_speech() -> keras.Model:
    """TFLM's micro_speech model's shape: a flat (1, 1960) input of 49 x 40 features reshaped
    to (49, 40, 1) (the RESHAPE of the network input), a 10x8 depthwise conv stride 2, a
    classifier."""
    x = inp = keras.Input((1960,), batch_size=1)
    x = L.Reshape((49, 40, 1))(x)
    x = L.DepthwiseConv2D((10, 8), strides=(2, 2), padding="same", activation="relu")(x)
    return keras.Model(inp, L.Dense(4)(L.Flatten()(x)), name="micro_speech")


def tcn() -> keras.Model:
    """A temporal convolutional net on 64 steps of 6 sensor channels: causal Conv1D dilated 1,
    2, 4 (PAD on the left of the sequence, then a RESHAPE to (1, 1, W, C) before each
    CONV_2D), a Dense on every step (FULLY_CONNECTED keeping the steps), a pooled classifier."""
    x = inp = keras.Input((64, 6), batch_size=1)
    for d in (1, 2, 4):
        x = L.Conv1D(8, 3, padding="causal", dilation_rate=d, activation="relu")(x)
    x = L.Dense(12, activation="relu")(x)
    return keras.Model(inp, L.Dense(3)(L.GlobalAveragePooling1D()(x)), name="tcn")


def elu_float() -> keras.Model:
    """An ELU, which the converter leaves in float32 between a DEQUANTIZE and a QUANTIZE (no
    int8 kernel): refused."""
    x = inp = keras.Input((8, 8, 3), batch_size=1)
    x = L.ELU()(L.Conv2D(4, 3, padding="same")(x))
    return keras.Model(inp, L.Conv2D(4, 1)(x), name="elu_float")


def channel_split() -> keras.Model:
    """Channel selections of activations: a slice x[..., :4] (STRIDED_SLICE, GhostNet's ghost
    module), an equal split (SPLIT) and an uneven one (SPLIT_V), each part convolved or
    concatenated back."""
    x = inp = keras.Input((8, 8, 3), batch_size=1)
    y = L.Conv2D(12, 1, activation="relu")(x)
    a, b = keras.ops.split(y, 2, axis=-1)
    c, d = keras.ops.split(y, [5], axis=-1)
    z = L.Concatenate()([L.Conv2D(4, 3, padding="same")(a), b, y[..., :4],
                         L.Conv2D(4, 1)(c), d])
    return keras.Model(inp, L.Conv2D(6, 1)(z), name="channel_split")


def cropping() -> keras.Model:
    """Cropping2D (a STRIDED_SLICE of H and W): refused."""
    x = inp = keras.Input((8, 8, 3), batch_size=1)
    x = L.Cropping2D(1)(L.Conv2D(4, 3, padding="same")(x))
    return keras.Model(inp, L.Conv2D(4, 1)(x), name="cropping")


def fomo() -> keras.Model:
    """A FOMO-style detector (Edge Impulse's): MobileNetV2 (alpha 0.35) cut at 1/8 of the
    input, a 1x1 conv head and a Softmax over the classes of every cell of the 4x4 map."""
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                          include_top=False)
    x = L.Conv2D(16, 1, activation="relu")(base.get_layer("block_6_expand_relu").output)
    return keras.Model(base.input, L.Softmax()(L.Conv2D(3, 1)(x)), name="fomo")


def randomise(model: keras.Model, rng: np.random.Generator) -> None:
    """Nonzero biases and BatchNorm statistics (Keras initialises them to 0/1)."""
    ws = []
    for w in model.get_weights():
        if w.ndim == 1:
            w = rng.uniform(0.5, 1.5, w.shape) if np.all(w == 1) else rng.normal(0, 0.2, w.shape)
        ws.append(w.astype(np.float32))
    model.set_weights(ws)


def calibrate_bn(model: keras.Model, rng: np.random.Generator,
                 data_range: tuple[float, float]) -> None:
    """BatchNormalization statistics taken from data, as training leaves them: in graph
    order, each layer's moving mean and variance become those of its input over a batch of
    random inputs (gamma and beta stay random). With random weights and made-up statistics a
    deep network's activations fade until its output no longer depends on its input."""
    x = rng.uniform(*data_range, (16,) + tuple(model.input_shape[1:])).astype(np.float32)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            a = np.asarray(keras.Model(model.inputs, layer.input)(x))
            axes = tuple(range(a.ndim - 1))
            w = layer.get_weights()
            layer.set_weights(w[:-2] + [a.mean(axes), a.var(axes)])


def convert(model: keras.Model, int8_io: bool, seed: int, per_tensor_dense: bool = False,
            quantise: bool = True, rep_range: tuple[float, float] = (-1.0, 1.0),
            rep_count: int = 32, uint8_io: bool = False) -> bytes:
    shape = (1,) + tuple(model.input_shape[1:])

    def rep():
        rng = np.random.default_rng(seed)
        for _ in range(rep_count):
            yield [rng.uniform(*rep_range, shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if not quantise:  # a float model, which msfsim refuses
        return conv.convert()
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if per_tensor_dense:  # as converters before TF 2.16 wrote FULLY_CONNECTED weights
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    if int8_io or uint8_io:
        conv.inference_input_type = tf.uint8 if uint8_io else tf.int8
        conv.inference_output_type = tf.uint8 if uint8_io else tf.int8
    return conv.convert()


def main(argv: list[str]) -> int:
    print(f"TensorFlow {tf.__version__}")
    OUT.mkdir(parents=True, exist_ok=True)
    # name, model, int8 input/output, per-tensor FULLY_CONNECTED weights
    cases = [("lenet", lambda: lenet(None), True, True),
             ("mbv2_block", mbv2_block, True, False),
             ("dscnn", dscnn, True, False),
             ("dscnn_float_io", dscnn, False, False),
             ("concat", unsupported, True, False),
             ("float32_unquantised", unsupported, False, False),
             ("mbv3_small", mbv3_small, True, False),
             ("sigmoid_net", sigmoid_net, True, False),
             ("hard_swish_table", unary("hard_swish", 5.0), True, False),
             ("sigmoid_table", unary("sigmoid", 7.0), True, False),
             ("tanh_table", unary("tanh", 3.0), True, False),
             ("softmax_net", softmax_net, True, False),
             ("broadcast_add", broadcast_add, True, False),
             ("dw_multiplier", dw_multiplier, True, False),
             ("mobilenet_v1", mobilenet_v1, True, False),
             ("mobilenet_v2", mobilenet_v2, True, False),
             ("mobilenet_v3_small", mobilenet_v3_small, True, False),
             ("resnet8", resnet8, True, False),
             ("inception", inception, True, False),
             ("hard_sigmoid_table", hard_sigmoid_table, True, False),
             ("per_channel_add", per_channel_add, True, False),
             ("keras_normalization", keras_normalization, True, False),
             ("prelu_net", prelu_net, True, False),
             ("conv1d_kws", conv1d_kws, True, False),
             ("subtract", subtract, True, False),
             ("grouped_pad_pool", grouped_pad_pool, True, False),
             ("pad_before_pool", pad_before_pool, True, False),
             ("dscnn_uint8_io", dscnn, False, False),
             ("micro_speech", micro_speech, True, False),
             ("tcn", tcn, True, False),
             ("elu_float", elu_float, True, False),
             ("channel_split", channel_split, True, False),
             ("cropping", cropping, True, False),
             ("fomo", fomo, True, False)]
    # the representative data of models that take pixel values (their own Rescaling), and
    # of a table over the range where hard_sigmoid bends
    rep_ranges = {"mobilenet_v3_small": (0.0, 255.0), "hard_sigmoid_table": (-5.0, 5.0)}
    # whole Keras architectures: 8 representative inputs, BatchNormalization from data
    big = {"mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "resnet8", "inception", "fomo"}
    wanted = set(argv)
    unknown = wanted - {c[0] for c in cases}
    if unknown:
        print(f"no such fixture: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for i, (name, make, int8_io, per_tensor) in enumerate(cases):
        if wanted and name not in wanted:
            continue
        keras.backend.clear_session()  # layer names independent of the fixtures made before
        keras.utils.set_random_seed(SEED + i)
        model = make()
        randomise(model, np.random.default_rng(SEED + i))
        if name in big:
            calibrate_bn(model, np.random.default_rng(SEED + i),
                         rep_ranges.get(name, (-1.0, 1.0)))
        data = convert(model, int8_io, SEED + i, per_tensor,
                       quantise=name != "float32_unquantised",
                       rep_range=rep_ranges.get(name, (-1.0, 1.0)),
                       rep_count=8 if name in big else 32, uint8_io=name == "dscnn_uint8_io")
        assert len(data) < (400_000 if name in big else 100_000), (name, len(data))
        (OUT / f"{name}.tflite").write_bytes(data)
        print(f"{name}.tflite: {len(data):,} B")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
