"""The training half: TensorFlow, tf_keras and tensorflow-model-optimization.

Import ``edgecnn.training.keras_compat`` (directly or through any module here) before
TensorFlow: it is the one place that selects tf_keras (Keras 2), which tfmot requires.
"""
