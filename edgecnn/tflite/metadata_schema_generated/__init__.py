"""Generated TFLite Metadata schema (flatc output); see README.md here. Used through edgecnn.tflite.standard."""
