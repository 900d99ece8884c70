"""The Keras/QKeras frontend: a .h5/.keras file or tf.keras model -> layer graph.

One module per kind of layer, each registering its handlers into :data:`convert.LAYERS`:

- :mod:`.convert`        the walk over the model's layers, :class:`~.convert.Context`, the activation helpers
- :mod:`.core`           InputLayer, Dense/QDense, Activation/QActivation, Softmax, Flatten, Dropout & co.
- :mod:`.activation`     ReLU, LeakyReLU, ThresholdedReLU, ELU, PReLU
- :mod:`.conv`           Conv1D/QConv1D, Conv2D/QConv2D
- :mod:`.depthwise`      DepthwiseConv1D/2D, SeparableConv1D/2D (and their QKeras forms)
- :mod:`.pooling`        Max/AveragePooling1D/2D, GlobalMax/AveragePooling1D/2D
- :mod:`.reshaping`      ZeroPadding, Cropping, UpSampling (1D/2D), Reshape, Permute
- :mod:`.merge`          Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate
- :mod:`.normalization`  BatchNormalization/QBatchNormalization, QConv2DBatchnorm, QDepthwiseConv2DBatchnorm
- :mod:`.quant`          QKeras weight quantization and quantized activations on nodes
- :mod:`.quantizers`     QKeras quantizers -> FixedType (and exact tables)
- :mod:`.inputs`         input-shape and layout checks the spatial handlers share
- :mod:`.loader`         the model file -> tf.keras model (the only place that imports TensorFlow)
"""

from . import activation, conv, core, depthwise, merge, normalization, pooling, reshaping  # noqa: F401  (register)
from .convert import LAYERS, keras_to_graph, supported_layers
from .loader import import_tf, load_keras_model

__all__ = ["LAYERS", "keras_to_graph", "supported_layers", "load_keras_model", "import_tf"]
