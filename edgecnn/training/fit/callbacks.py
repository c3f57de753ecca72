"""Keras callbacks of ``edgecnn train``: per-epoch progress line, NaN guard, checkpoints and early stopping.

``EpochLine`` is also the progress line of the pruning and QAT fine-tunes (``optimize.finetune``).

Checkpoints (``RUN/checkpoints/``) make a killed run resumable:
- ``last-<epoch>``: weights + optimizer state (Adam moments, step counter that drives the schedule);
- ``best-<epoch>``: weights of the epoch with the lowest validation loss, restored at the end (loss
  is smoother than accuracy on a validation split of a few hundred images);
- ``state.json``: completed epochs, history, early-stopping counters and which prefixes are current.
TensorFlow writes a checkpoint as several files, so it is never "the" artifact: ``state.json`` is
written atomically *after* the files it names, and stale prefixes are deleted only after that, so
a crash at any moment leaves a state that points to complete checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path

from edgecnn.atomic import write_json
from edgecnn.errors import TrainingDiverged, WriteFailed
from edgecnn.training.keras_compat import keras, tf

STATE_FILE = "state.json"


@dataclasses.dataclass
class TrainState:
    """What ``--resume`` needs besides the weights; saved as ``checkpoints/state.json``."""

    epoch: int = 0  # completed epochs
    last: str = ""  # checkpoint prefix (relative to the checkpoint folder) with weights + optimizer
    best: str = ""  # prefix with the best weights so far
    best_epoch: int = 0
    best_val_loss: float = math.inf
    wait: int = 0  # epochs since the last improvement
    stopped_early: bool = False
    history: list = dataclasses.field(default_factory=list)

    @classmethod
    def load(cls, folder) -> "TrainState | None":
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["best_val_loss"] = math.inf if raw.get("best_val_loss") is None else raw["best_val_loss"]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, folder) -> None:
        doc = dataclasses.asdict(self)
        doc["best_val_loss"] = None if math.isinf(self.best_val_loss) else self.best_val_loss  # JSON has no inf
        write_json(Path(folder) / STATE_FILE, doc)


def restore_weights(folder, prefix: str, model, optimizer=None) -> None:
    """Load a checkpoint written by ``Checkpointer`` into ``model`` (and ``optimizer``)."""
    objects = {"model": model} if optimizer is None else {"model": model, "optimizer": optimizer}
    status = tf.train.Checkpoint(**objects).read(str(Path(folder) / prefix))
    status.assert_existing_objects_matched()
    if optimizer is None:
        status.expect_partial()  # the optimizer slots stored alongside are not wanted here


class Checkpointer(keras.callbacks.Callback):
    """Per epoch: record history, keep best + last checkpoints, stop after ``patience`` epochs without progress."""

    def __init__(self, folder, state: TrainState, *, patience: int, learning_rate, min_epochs: int = 0):
        super().__init__()
        self.folder = Path(folder)
        self.state = state
        self.patience = patience
        self.min_epochs = min_epochs  # early stopping decides only from this epoch on
        self.learning_rate = learning_rate  # schedule: the rate of the step an epoch ended on
        self.phase = None  # "warmup" / "finetune" when training starts from pretrained weights
        self._started = 0.0
        self._best_checkpoint = self._last_checkpoint = None

    def on_train_begin(self, logs=None):
        # One Checkpoint object each, reused every epoch of a fit (each phase's fit has its own optimizer): a new one would re-trace its save function (~0.3 s).
        self._best_checkpoint = tf.train.Checkpoint(model=self.model)
        self._last_checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        done = epoch + 1
        row = {"epoch": done, **{k: float(v) for k, v in logs.items()},
               "lr": float(self.learning_rate(self.model.optimizer.iterations)),
               "seconds": round(time.perf_counter() - self._started, 3),
               **({"phase": self.phase} if self.phase else {})}
        self.state.history.append(row)
        val_loss = float(logs["val_loss"])
        stale = []
        if val_loss < self.state.best_val_loss:
            stale.append(self.state.best)
            self.state.best = f"best-{done}"
            self._write(self._best_checkpoint, self.state.best)
            self.state.best_val_loss, self.state.best_epoch, self.state.wait = val_loss, done, 0
        else:
            self.state.wait += 1
        stale.append(self.state.last)
        self.state.last = f"last-{done}"
        self._write(self._last_checkpoint, self.state.last)
        self.state.epoch = done
        if self.state.wait >= self.patience and done >= self.min_epochs:
            self.state.stopped_early = True
            self.model.stop_training = True
        self.state.save(self.folder)
        for prefix in stale:
            self._delete(prefix)

    def _write(self, checkpoint, prefix: str) -> None:
        """Write one checkpoint; on a full or read-only disk remove TensorFlow's ``<prefix>_temp`` folder and say so."""
        try:
            checkpoint.write(str(self.folder / prefix))
        except BaseException as exc:  # a full disk, or Ctrl-C mid-write: nothing of this prefix is kept
            for leftover in self.folder.glob(f"{prefix}_temp*"):
                shutil.rmtree(leftover, ignore_errors=True)
            self._delete(prefix)
            if not isinstance(exc, (tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError,
                                    tf.errors.UnknownError)):
                raise
            reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            raise WriteFailed(f"cannot write checkpoint {self.folder / prefix}: {reason}; free some space there or "
                              "choose another --out (the epochs already checkpointed are kept: --resume)") from None

    def _delete(self, prefix: str) -> None:
        if prefix:
            for path in self.folder.glob(f"{prefix}.*"):
                path.unlink(missing_ok=True)


class NaNGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss with a message that says what to try."""

    def __init__(self, lr: float):
        super().__init__()
        self.lr = lr
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"training diverged: loss became {float(loss)} at epoch {self._epoch}, step {batch + 1}; "
                f"lower the learning rate (--lr, now {self.lr:g}) or check the images and labels")


class EpochLine(keras.callbacks.Callback):
    """One line per epoch on stderr (stdout stays clean for --json); the one epoch printer of training.

    ``edgecnn train`` passes its ``TrainState``: the line shows the checkpointer's history row (metrics,
    learning rate, seconds) and '*' on a new best epoch. The pruning and QAT fine-tunes pass
    ``state=None`` and their ``stage`` name: the line shows every metric Keras logged and the time.
    """

    def __init__(self, state: TrainState | None, epochs: int, out=None, *, stage: str = ""):
        super().__init__()
        self.state = state
        self.epochs = epochs
        self.out = out
        self.stage = stage
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.state is not None:
            line = self._train_line(epoch)
        else:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if isinstance(v, (int, float)))
            line = (f"{self.stage} epoch {epoch + 1}/{self.epochs}  {shown}  "
                    f"({time.perf_counter() - self._start:.1f}s)")
        print(line, file=self.out or sys.stderr, flush=True)

    def _train_line(self, epoch: int) -> str:
        row = self.state.history[-1] if self.state.history else {}
        best = " *" if self.state.best_epoch == epoch + 1 else ""
        return (f"epoch {epoch + 1:>3}/{self.epochs}  loss {row.get('loss', float('nan')):.4f}  "
                f"acc {row.get('accuracy', float('nan')):.4f}  val_loss {row.get('val_loss', float('nan')):.4f}  "
                f"val_acc {row.get('val_accuracy', float('nan')):.4f}  lr {row.get('lr', 0):.2e}  "
                f"{row.get('seconds', 0):.1f}s{best}")
