"""The device half: numpy, OpenCV and a TFLite interpreter (LiteRT). Never TensorFlow.

A test imports every module here in a fresh interpreter and asserts that ``tensorflow``
never appears in ``sys.modules``; keep it that way.
"""
