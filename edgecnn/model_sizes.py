"""How small an input a model can take: the downsampling rule every registered architecture follows.

TF-free, so that a recipe's ``model.size`` is checked before TensorFlow loads.
"""

from __future__ import annotations

from edgecnn.errors import ModelError

# Downsampling adapts to the input size: a model uses as many stride-2 stages as it can
# (up to its design's maximum) while keeping the last feature map at least MIN_FINAL_PX wide.
# Fewer than MIN_STRIDES stride-2 stages is not a sensible CNN any more, hence MIN_SIZE.
MIN_FINAL_PX = 2
MIN_STRIDES = 2
MIN_SIZE = MIN_FINAL_PX * 2**MIN_STRIDES
# The largest input edgecnn builds: far above what an edge model takes (96-224 px), and small enough that a
# typo (--size 100000) is a one-line error, not a multi-hundred-GiB allocation traceback.
MAX_SIZE = 1024


def count_strides(size: int, max_strides: int) -> int:
    """How many stride-2 stages fit ``size`` pixels while the last feature map stays >= MIN_FINAL_PX."""
    strides = 0
    while strides < max_strides and size // 2 ** (strides + 1) >= MIN_FINAL_PX:
        strides += 1
    return strides


def check_size(name: str, size: int, max_strides: int) -> int:
    """The number of stride-2 stages for ``size``, or a one-line error naming the minimum size."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise ModelError(f"--size must be a whole number of pixels, got {size!r}")
    if size > MAX_SIZE:
        raise ModelError(f"--size {size} is too large for {name}: the maximum is {MAX_SIZE} pixels; "
                         f"use --size {MAX_SIZE} or less")
    strides = count_strides(size, max_strides)
    if strides < MIN_STRIDES:
        raise ModelError(f"--size {size} is too small for {name}: the minimum is {MIN_SIZE} "
                         f"({MIN_STRIDES} stride-2 stages down to a {MIN_FINAL_PX}x{MIN_FINAL_PX} feature map); "
                         f"use --size {MIN_SIZE} or more")
    return strides
