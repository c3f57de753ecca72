"""Transfer learning's two phases: a frozen backbone (BatchNorm in inference mode) under a warming-up head, then
the whole model at a lower learning rate; the split is planned in optimizer steps."""

import numpy as np
import pytest

from edgecnn.errors import RecipeError
from edgecnn.training.fit.phases import (
    FINETUNE,
    FINETUNE_LR_FACTOR,
    WARMUP,
    WARMUP_STEPS,
    freeze_backbone,
    plan_transfer,
    unfreeze,
)
from edgecnn.training.keras_compat import keras
from edgecnn.training.models.mobilenet import build_model
from edgecnn.training.models.pretrained import backbone_layers


def _fit(model, lr):
    keras.utils.set_random_seed(0)  # dropout under TF_DETERMINISTIC_OPS needs one
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 16, 16, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 2, 16), 2)
    model.compile(optimizer=keras.optimizers.legacy.Adam(lr), loss="categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)


def _snapshot(model, name):
    return [w.copy() for w in model.get_layer(name).get_weights()]


def test_warmup_trains_only_the_head_and_finetune_keeps_batchnorm_statistics():
    model = build_model("mobilenet_v1_tiny", num_classes=2, size=16)
    names = backbone_layers(model)
    head_params = freeze_backbone(model, names)
    assert head_params == model.get_layer("logits").count_params()
    before = {n: _snapshot(model, n) for n in ("block2_pw", "block2_pw_bn", "logits")}
    _fit(model, 1e-2)
    for name in ("block2_pw", "block2_pw_bn"):  # frozen: kernel and BN moving statistics alike
        for a, b in zip(before[name], model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(before["logits"][0], model.get_layer("logits").get_weights()[0])

    trainable = unfreeze(model)
    assert trainable > head_params and not model.get_layer("block2_pw_bn").trainable
    _fit(model, 1e-3)
    assert not np.array_equal(before["block2_pw"][0], model.get_layer("block2_pw").get_weights()[0])
    for a, b in zip(before["block2_pw_bn"], model.get_layer("block2_pw_bn").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert unfreeze(model, keep_batchnorm_frozen=False) == model.count_params() - _bn_moving(model)


def _bn_moving(model):
    return sum(int(np.prod(w.shape)) for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
               for w in layer.non_trainable_weights)


def test_freeze_refuses_unknown_layers():
    model = build_model("mobilenet_v1_tiny", num_classes=2, size=16)
    with pytest.raises(ValueError, match="no layer"):
        freeze_backbone(model, ["nope"])


@pytest.mark.parametrize("epochs, steps, warmup", [
    (20, 3, 5),       # a small folder: 300 steps would be 100 epochs; capped at a quarter of the run
    (40, 30, 10),     # 300 / 30 = 10 epochs, within the quarter
    (20, 1000, 1),    # a large set: one epoch is already more than enough
    (3, 5, 1),        # a short run still warms up for one epoch
    (1, 5, 1),        # one epoch in all: warm-up only
])
def test_plan_counts_steps_not_epochs(epochs, steps, warmup):
    plan = plan_transfer(epochs, steps, 1e-3)
    assert plan.warmup_epochs == warmup
    assert plan.warmup_steps == warmup * steps and plan.finetune_steps == (epochs - warmup) * steps
    assert plan.finetune_lr == pytest.approx(1e-3 * FINETUNE_LR_FACTOR)
    assert plan.phase_of(1) == WARMUP and plan.phase_of(epochs) == (FINETUNE if epochs > warmup else WARMUP)
    assert plan.to_dict()["warmup_epochs"] == warmup
    assert WARMUP_STEPS == 300


def test_plan_refuses_nonsense():
    with pytest.raises(RecipeError, match="--epochs must be at least 1"):
        plan_transfer(0, 5, 1e-3)
    with pytest.raises(RecipeError, match="at least 1 step"):
        plan_transfer(5, 0, 1e-3)
