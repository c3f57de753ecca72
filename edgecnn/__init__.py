"""edgecnn: compact image classifiers from a folder of photos to a Raspberry Pi or a Coral.

Importing this package is cheap on purpose: it imports neither TensorFlow nor OpenCV.
The training half lives in ``edgecnn.training`` (TensorFlow, tf_keras, tfmot) and the
device half in ``edgecnn.runtime`` (numpy, OpenCV, LiteRT). The .tflite file and the
metadata inside it are the only contract between them.
"""

__version__ = "0.1.0"
