"""Which exported file to deploy: chosen from the measured benchmark table by the recipe's ``deploy`` rule.

The rule (recipe section ``deploy``): among the .tflite rows of benchmark.json measured on the
target (``cpu``, ``gpu`` or ``edgetpu``: the row's delegate) that pass both gates, take the
smallest file (``prefer: smallest``, ties broken by latency) or the one with the lowest measured
p50 latency (``prefer: fastest``, ties broken by size). The gates are the parity section's unless
the deploy section sets its own: accuracy drop against the float model on the same test images
(percentage points) and top-1 disagreement with it (a fraction of the images).

The answer (``recommend``) is a plain dict, written to the run as deploy.json and shown by
``pipeline``, ``benchmark`` and report.html:
  status       "recommended", "none_passed" (measured, but every file fails a gate) or
               "not_measured" (no file was measured on the target here)
  recommended  the chosen row (format, file, source, size, latency, accuracy, drop) or None
  reason       one line that says why; notes: what the choice costs against the alternatives
It never reads a file's name to decide: only the measured figures. TF-free.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgecnn.atomic import write_json
from edgecnn.errors import RecipeError, closest
from edgecnn.export_plan import EXPORT_TARGETS

PREFERENCES = ("smallest", "fastest")
DEPLOY_FILE = "deploy.json"
# As the parity gates: float rounding (1 - 0.98 = 0.0200000000000000018) does not fail a figure at the limit.
ROUNDING = 1e-9
# Latencies closer than this are within the run-to-run spread of a p50 here: the note says so.
LATENCY_TIE = 0.05
# What the notes mention: a passing file this many times faster than the smallest, or this share smaller than
# the fastest (the demo's smallest passing file, dynamic range, measured 100x slower than int8 here).
FASTER = 1.5
SMALLER = 0.10


@dataclasses.dataclass(frozen=True)
class DeployRule:
    prefer: str = "smallest"
    target: str = "cpu"
    max_accuracy_drop: float | None = None  # percentage points below the float model
    max_disagreement: float | None = None  # share of test images whose top-1 differs from the float model

    def gates(self) -> str:
        parts = []
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {self.max_accuracy_drop:g} pp")
        if self.max_disagreement is not None:
            parts.append(f"disagreement <= {self.max_disagreement:.2%}")
        return ", ".join(parts) or "no gates"


def check_deploy_settings(settings, source: str) -> None:
    """The recipe's deploy.prefer and deploy.target: known words (numbers are ranged by the typed recipe)."""
    if settings.prefer not in PREFERENCES:
        raise RecipeError(f"{source}: deploy.prefer {settings.prefer!r}{closest(str(settings.prefer), PREFERENCES)} "
                          f"is not one of {', '.join(PREFERENCES)}")
    if settings.target is not None and settings.target not in EXPORT_TARGETS:
        raise RecipeError(f"{source}: deploy.target {settings.target!r}{closest(str(settings.target), EXPORT_TARGETS)} "
                          f"is not one of {', '.join(EXPORT_TARGETS)} (or null: export.target)")


def rule_from_recipe(recipe, prefer: str | None = None) -> DeployRule:
    """The recipe's deploy rule; null keys take export.target and the parity gates; ``prefer`` overrides."""
    deploy, parity = recipe.deploy, recipe.parity
    if prefer is not None and prefer not in PREFERENCES:
        raise RecipeError(f"--prefer {prefer!r}{closest(prefer, PREFERENCES)} is not one of {', '.join(PREFERENCES)}")
    return DeployRule(
        prefer=prefer or deploy.prefer, target=deploy.target or recipe.export.target,
        max_accuracy_drop=parity.max_accuracy_drop if deploy.max_accuracy_drop is None else deploy.max_accuracy_drop,
        max_disagreement=parity.max_disagreement if deploy.max_disagreement is None else deploy.max_disagreement)


def reference_accuracy(result: dict) -> float | None:
    """The float model's test accuracy the drops are measured from (an older table: its keras row)."""
    reference = (result.get("reference") or {}).get("accuracy")
    if reference is not None:
        return reference
    keras = next((r for r in result.get("rows", []) if r.get("format") == "keras" and r.get("status") == "ok"), None)
    return keras.get("accuracy") if keras else None


def gate_failures(row: dict, rule: DeployRule, reference: float | None) -> list[str]:
    """Why a measured row fails the rule's gates; empty when it passes."""
    failures = []
    if rule.max_accuracy_drop is not None:
        drop = accuracy_drop(row, reference)
        if drop is None:
            failures.append("accuracy not measured (the run has no float.keras)")
        elif drop > rule.max_accuracy_drop + ROUNDING:
            failures.append(f"accuracy drop {drop:.2f} pp > {rule.max_accuracy_drop:g} pp")
    if rule.max_disagreement is not None:
        agreement = row.get("top1_agreement")
        if agreement is None:
            failures.append("agreement not measured (the run has no float.keras)")
        elif 1 - agreement > rule.max_disagreement + ROUNDING:
            failures.append(f"disagreement {1 - agreement:.2%} > {rule.max_disagreement:.2%}")
    return failures


def accuracy_drop(row: dict, reference: float | None) -> float | None:
    if reference is None or row.get("accuracy") is None:
        return None
    return 100.0 * (reference - row["accuracy"])


def recommend(result: dict, rule: DeployRule) -> dict:
    """The deploy decision over a benchmark result (benchmark.json); see the module docstring."""
    reference = reference_accuracy(result)
    on_target = [r for r in result.get("rows", []) if r.get("delegate", "cpu") == rule.target
                 and str(r.get("file") or "").endswith(".tflite")]
    measured = [r for r in on_target if r.get("status") == "ok"]
    passing, rejected = [], []
    for row in measured:
        failures = gate_failures(row, rule, reference)
        (rejected if failures else passing).append((row, failures))
    answer = {"rule": dataclasses.asdict(rule), "reference_accuracy": reference, "recommended": None,
              "passing": [r["format"] for r, _ in passing],
              "rejected": [{"format": r["format"], "file": r["file"], "reasons": f} for r, f in rejected],
              "notes": []}
    if not measured:
        return answer | {"status": "not_measured", "reason": _not_measured(on_target, rule)}
    if not passing:
        why = "; ".join(f"{r['file']} ({r['format']}): {', '.join(f)}" for r, f in rejected)
        return answer | {"status": "none_passed", "reason": (
            f"no file passes the deploy gates on {rule.target} ({rule.gates()}): {why}; nothing is recommended. "
            "Loosen deploy.max_accuracy_drop / deploy.max_disagreement in the recipe, or train a better model")}
    rows = [r for r, _ in passing]
    chosen = min(rows, key=_sort_key(rule.prefer))
    answer["recommended"] = _summary(chosen, reference)
    answer["notes"] = _notes(chosen, rows, rule, reference)
    return answer | {"status": "recommended", "reason": _reason(chosen, len(rows), rule, reference)}


def _sort_key(prefer: str):
    if prefer == "fastest":
        return lambda r: (r["latency_ms_p50"], r["size_bytes"], r["format"])
    return lambda r: (r["size_bytes"], r["latency_ms_p50"], r["format"])


def _not_measured(on_target: list[dict], rule: DeployRule) -> str:
    if on_target:
        why = "; ".join(f"{r['format']}: {r.get('status')} ({r.get('note') or 'no reason given'})" for r in on_target)
        return f"no file could be measured on {rule.target} here ({why}); nothing is recommended"
    return (f"no file was measured on {rule.target}; nothing is recommended. Measure there with "
            f"'edgecnn benchmark RUN --delegates {rule.target}'")


def _summary(row: dict, reference: float | None) -> dict:
    keys = ("format", "file", "source", "size_bytes", "gzip_bytes", "latency_ms_p50", "accuracy", "top1_agreement")
    return {k: row.get(k) for k in keys} | {"accuracy_drop_pp": accuracy_drop(row, reference)}


def _figures(row: dict) -> str:
    parts = [f"{row['size_bytes'] / 1024:.1f} KB", f"p50 {row['latency_ms_p50']:.4g} ms"]
    if row.get("accuracy") is not None:
        parts.append(f"accuracy {row['accuracy']:.1%}")
    return ", ".join(parts)


def _reason(row: dict, count: int, rule: DeployRule, reference: float | None) -> str:
    which = "smallest" if rule.prefer == "smallest" else "fastest (measured p50)"
    of = "the only file that passes" if count == 1 else f"{which} of the {count} files that pass"
    return (f"{row['file']}: {of} on {rule.target} ({rule.gates()}); "
            f"{row['format']} from the {row.get('source') or '?'} model, {_figures(row)}")


def _notes(chosen: dict, rows: list[dict], rule: DeployRule, reference: float | None) -> list[str]:
    """What the choice gives up against the other passing files: accuracy, speed or size, and a latency too
    close to call."""
    notes = []
    best = max(rows, key=lambda r: (r.get("accuracy") or 0.0, -r["size_bytes"]))
    if best is not chosen and (best.get("accuracy") or 0) > (chosen.get("accuracy") or 0) + ROUNDING:
        gain = 100 * (best["accuracy"] - chosen["accuracy"])
        notes.append(f"{best['format']} ({best['file']}) is {gain:.1f} pp more accurate, at "
                     f"{best['size_bytes'] / 1024:.1f} KB and p50 {best['latency_ms_p50']:.4g} ms")
    if rule.prefer == "smallest":
        fastest = min(rows, key=_sort_key("fastest"))
        ratio = chosen["latency_ms_p50"] / fastest["latency_ms_p50"] if fastest["latency_ms_p50"] else 0
        if fastest is not chosen and ratio >= FASTER:
            notes.append(f"{fastest['format']} ({fastest['file']}) is {ratio:.1f}x faster (p50 "
                         f"{fastest['latency_ms_p50']:.4g} ms), at {fastest['size_bytes'] / 1024:.1f} KB; "
                         "--prefer fastest picks by latency")
        return notes
    smallest = min(rows, key=_sort_key("smallest"))
    if smallest is not chosen and smallest["size_bytes"] <= chosen["size_bytes"] * (1 - SMALLER):
        notes.append(f"{smallest['format']} ({smallest['file']}) is "
                     f"{1 - smallest['size_bytes'] / chosen['size_bytes']:.0%} smaller "
                     f"({smallest['size_bytes'] / 1024:.1f} KB), at p50 {smallest['latency_ms_p50']:.4g} ms")
    close = [r for r in rows if r is not chosen and r["latency_ms_p50"] <= chosen["latency_ms_p50"] * (1 + LATENCY_TIE)]
    if close:
        notes.append(f"{', '.join(r['format'] for r in close)} within {LATENCY_TIE:.0%} of its latency: "
                     "too close to call from one benchmark")
    return notes


def write_decision(run_path, decision: dict) -> Path:
    """deploy.json in the run, atomically."""
    return write_json(Path(run_path) / DEPLOY_FILE, decision)


def decision_lines(decision: dict) -> list[str]:
    """What the CLI prints: the recommendation (or why none), its notes, then each rejected file."""
    head = "recommended for deployment: " if decision["status"] == "recommended" else "no recommendation: "
    lines = [head + decision["reason"]]
    lines += [f"  note: {note}" for note in decision.get("notes", [])]
    if decision["status"] == "recommended":
        lines += [f"  fails the gates: {r['file']} ({r['format']}): {', '.join(r['reasons'])}"
                  for r in decision.get("rejected", [])]
    return lines
