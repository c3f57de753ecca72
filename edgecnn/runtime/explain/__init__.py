"""TF-free explanations of any .tflite classifier: class activation maps and occlusion sensitivity.

``head`` finds a global-pooling + dense head in the flatbuffer; ``explainer`` runs the model
with its final feature map exposed as an extra output and forms the class activation map (CAM)
from that map and the dense weights, both dequantized with their own tensors' parameters;
``occlusion`` is the model-agnostic fallback; ``heatmaps`` holds the map arithmetic (resize,
overlay, mass inside a box, top-fraction overlap) that both halves share. Reading image files
and writing pictures for ``edgecnn explain MODEL.tflite`` is ``edgecnn.explain``'s (it needs image sets).
"""
