"""Explanations on the float Keras model (Grad-CAM, CAM, filters, activations) and float-vs-int8 agreement."""
