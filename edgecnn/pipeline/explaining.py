"""The pipeline's explain stage: what the report's explain section shows, written to ``RUN/explain/``.

Grad-CAM of the float model on the test split (misclassified images first in the grid), the first
convolution's filters, and where the deployable int8 export looks against the float model
(``explain --compare``). Like every stage it leaves artifacts and the report only reads them.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.pipeline.exporting import export_file
from edgecnn.recipe import Recipe
from edgecnn.rundir import RunDir
from edgecnn.training.explain.run_explain import ExplainRequest, explain_run

EXPLAIN_DIR = "explain"
IMAGES = 100  # Grad-CAM is one batch; the grid shows 32 of them, misclassified first


def explain_folder(run: RunDir) -> Path:
    return run.path / EXPLAIN_DIR


def explain_stage(run: RunDir, recipe: Recipe, *, log=print) -> dict:
    """explain.json (and agreement.json against the int8 export when the recipe exports one) in RUN/explain."""
    int8 = export_file(run, "int8", recipe) if "int8" in recipe.export.modes else None
    compare = int8 if int8 is not None and int8.is_file() else None
    if compare is None:
        log("explain: no int8 export in this run, so no float-vs-int8 attention agreement")
    request = ExplainRequest(source=run.path, out=explain_folder(run), split="test", compare=compare, limit=IMAGES)
    return explain_run(request, log=log)
