"""TF-free ``edgecnn explain`` for image files: decode them (``imagesets``), explain them with
``runtime.explain`` and write pictures and JSON. The explaining itself sits in ``runtime.explain``,
below image sets, so that the camera loop can use it too.
"""
