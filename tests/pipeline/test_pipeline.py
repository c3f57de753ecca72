"""`edgecnn pipeline`: stages in order, each skipped when its artifact is there; resume after a kill."""

import json
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import RunDirError
from edgecnn.pipeline.runner import check_run_dir, recipe_differences
from edgecnn.pipeline.stages import artifact_is_valid, stages_for
from edgecnn.recipe import apply_overrides, resolve
from edgecnn.rundir import RunDir

# The smallest recipe that still runs every stage: a few seconds per stage on 2 cores.
# Parity gates from measurement: this recipe with data.seed 0 (deterministic ops, as in this test), 0 again
# without them, 1, 2, 3 gave int8 top-1 agreement 0.944, 0.919, 0.952, 0.930, 0.959 and accuracy drops 2.96,
# 3.33, 0.74, 4.81, 2.22 pp on the 270 test images (worst: 22 disagreements, 4.8 pp). The gates sit over the
# worst case by about one 95% interval at n=270 (+-3 pp), so a gate failure means the QAT/export path broke,
# not an unlucky seed.
TINY_RECIPE = """
name: tiny_pipeline
model: {architecture: mobilenet_v1_tiny, size: 16}
data: {augment: false}
train: {epochs: 4, batch_size: 32}
prune: {sparsity: 0.5, epochs: 1}
qat: {enabled: true, epochs: 1, preserve_sparsity: true}
export: {modes: [fp32, int8], io: int8}
parity: {max_disagreement: 0.12, max_accuracy_drop: 8.0}
benchmark: {threads: 1, formats: [pruned-fp32, float-int8, qat-int8]}
"""


def test_stages_follow_the_recipe():
    recipe = resolve({"prune": {"sparsity": None}, "qat": {"enabled": False}, "export": {"modes": ["fp16", "int8"]}})
    names = [stage.name for stage in stages_for(recipe)]
    assert names == ["train", "evaluate", "export fp16", "export int8", "benchmark", "explain"]
    names = [stage.name for stage in stages_for(resolve({}))]
    assert names == ["train", "evaluate", "prune", "qat", "export fp32", "export int8", "benchmark", "explain"]


def test_half_written_or_foreign_artifacts_do_not_count_as_done(tmp_path):
    (tmp_path / "a.json").write_text("{broken")
    (tmp_path / "m.tflite").write_bytes(b"not a model at all")
    (tmp_path / "f.keras").write_bytes(b"PK but not a zip")
    (tmp_path / "empty.json").write_text("")
    for name in ("a.json", "m.tflite", "f.keras", "empty.json", "missing.json"):
        assert not artifact_is_valid(tmp_path / name), name
    (tmp_path / "ok.json").write_text('{"rows": []}')
    assert artifact_is_valid(tmp_path / "ok.json")


def _fake_run(tmp_path, recipe, data="digits"):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    saved = dict(recipe.to_dict(), run={"data": data})
    import yaml

    run.recipe.write_text(yaml.safe_dump(saved))
    return run


def test_resume_with_a_different_recipe_is_refused_and_says_what_differs(tmp_path):
    saved = resolve({"model": {"alpha": 0.25}, "train": {"epochs": 30}})  # a trained run records its epochs
    run = _fake_run(tmp_path, saved)
    wanted = apply_overrides(saved, {"train.epochs": 5})
    with pytest.raises(RunDirError, match=r"different recipe: train\.epochs \(run: 30, recipe: 5\)"):
        check_run_dir(run, wanted, "digits", resume=True, overwrite=False)
    with pytest.raises(RunDirError, match=r"data \(run: 'digits', now: 'shapes'\)"):
        check_run_dir(run, saved, "shapes", resume=True, overwrite=False)
    # The same recipe resumes; keys left to the architecture's default (None) are not differences.
    check_run_dir(run, resolve({}), "digits", resume=True, overwrite=False)
    assert recipe_differences(saved, resolve({})) == []


def test_existing_run_needs_resume_or_overwrite(tmp_path):
    run = _fake_run(tmp_path, resolve({}))
    with pytest.raises(RunDirError, match="already holds a run; pass --resume"):
        check_run_dir(run, resolve({}), "digits", resume=False, overwrite=False)
    with pytest.raises(RunDirError, match="contradict"):
        check_run_dir(run, resolve({}), "digits", resume=True, overwrite=True)


def test_cli_refuses_unknown_recipe_key_in_one_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  epoch: 3\n")
    result = CliRunner().invoke(cli, ["pipeline", str(recipe), "--data", "digits", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "unknown key train.epoch (did you mean 'epochs'?)" in result.output
    assert not (tmp_path / "run").exists()


def test_prefer_overrides_the_recipe_and_is_checked_before_any_work(tmp_path):
    from edgecnn.cli.pipeline_cmds import _OVERRIDES

    assert _OVERRIDES["prefer"] == "deploy.prefer"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("deploy:\n  prefer: smallest\n")
    result = CliRunner().invoke(cli, ["pipeline", str(recipe), "--data", "digits", "--out", str(tmp_path / "run"),
                                      "--prefer", "cheapest"])
    assert result.exit_code == 2 and "Invalid value for '--prefer'" in result.output
    assert not (tmp_path / "run").exists()
    recipe.write_text("deploy:\n  prefer: cheapest\n")
    result = CliRunner().invoke(cli, ["pipeline", str(recipe), "--data", "digits", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert (f"Error: {recipe}: deploy.prefer 'cheapest' (did you mean 'fastest'?) is not one of "
            "smallest, fastest") in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_interrupted_pipeline_resumes_where_it_stopped(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "edgecnn", "pipeline", str(recipe), "--data", "digits", "--out", str(out)]
    run = RunDir(out)
    later = (run.pruned_model, run.qat_model, run.path / "model_pruned_fp32.tflite",
             run.path / "model_pruned_qat_int8.tflite", run.benchmark_json)

    # Ctrl-C (a real SIGINT) as soon as training has finished: the prune stage that follows takes seconds.
    # SIGINT's default disposition in the child, as in a terminal: a test run started in the background of a
    # non-interactive shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not run.float_model.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.float_model.exists(), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    interrupted_at = time.time_ns()
    _, first_log = proc.communicate(timeout=120)
    # The interruption happened: the CLI's exit code for Ctrl-C, one line saying so, nothing after training.
    assert proc.returncode == 130, first_log[-3000:]
    assert first_log.rstrip().endswith("Error: interrupted") and "Traceback" not in first_log, first_log[-3000:]
    assert not any(path.exists() for path in later), [p.name for p in later if p.exists()]
    trained_at = run.float_model.stat().st_mtime_ns

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "train: done already (float.keras present), skipped" in resumed.stderr
    assert run.float_model.stat().st_mtime_ns == trained_at  # not trained again
    # The stages after the interruption really ran in the resumed process: each logged its own run and
    # wrote its artifact after the Ctrl-C (not a file left over and merely found on disk).
    for name in ("prune", "qat", "export fp32", "export int8", "benchmark"):
        assert f"] {name}: done in " in resumed.stderr, name
    for artifact in (*later, run.report_html):
        assert artifact_is_valid(artifact), artifact
        assert artifact.stat().st_mtime_ns > interrupted_at, artifact
    for mode in ("pruned_qat_int8",):  # the quantized export has a parity report; fp32 is the float model itself
        parity = json.loads((out / f"parity_{mode}.json").read_text())
        assert (out / f"parity_{mode}.json").stat().st_mtime_ns > interrupted_at
        assert parity["top1_agreement"] >= 0.88 and parity["accuracy_drop_pp"] <= 8.0, parity  # the gates held
    # Each export is named for the model it came from: fp32 from the pruned model, int8 from pruned + QAT.
    exports = [run.path / "model_pruned_fp32.tflite", run.path / "model_pruned_qat_int8.tflite"]
    assert "model_pruned_qat_int8.tflite top-1 agreement" in resumed.stdout
    # The file to deploy is the measured table's smallest passing row, whatever its name.
    table = json.loads(run.benchmark_json.read_text())
    decision = json.loads((run.path / "deploy.json").read_text())
    gates = decision["rule"]
    passing = [row for row in table["rows"] if (row["file"] or "").endswith(".tflite")
               and 100 * (table["reference"]["accuracy"] - row["accuracy"]) <= gates["max_accuracy_drop"]
               and 1 - row["top1_agreement"] <= gates["max_disagreement"]]
    smallest = min(passing, key=lambda row: row["size_bytes"])
    assert decision["status"] == "recommended" and decision["recommended"]["file"] == smallest["file"]
    assert f"recommended for deployment: {smallest['file']}: " in resumed.stdout
    picked = run.report_html.read_text().split("<tr class='pick'>")[1].split("</tr>")[0]
    assert smallest["file"] in picked

    # The demo's last step on this run: a labelled clip of held-out images through `edgecnn run`.
    from edgecnn.pipeline.clip import live_loop_accuracy, write_labelled_clip
    from edgecnn.pipeline.demo import _run_live_loop

    clip = write_labelled_clip(run.split_items("test"), run.labels(), tmp_path / "clip.avi", limit=40)
    _run_live_loop(run.path / smallest["file"], clip, tmp_path / "live.jsonl")
    live = live_loop_accuracy(tmp_path / "live.jsonl", clip)
    assert live["frames"] == 40 * 3
    # The tiny model is ~85-90% accurate on the test split; frames misaligned with their labels
    # would score near chance (10%).
    assert live["accuracy"] > 0.6

    # A third call has nothing left to do.
    again = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert again.stderr.count("done already") == len(stages_for(resolve(__import__("yaml").safe_load(TINY_RECIPE))))

    # Gates tighter than every measured file (half the smallest disagreement in the table): nothing is fit to
    # deploy, so the pipeline says so and exits 3, after writing deploy.json and the report. (Measured here:
    # the smallest disagreement is float-int8's 0.4%, 1 of 270 test images.)
    least = min(1 - row["top1_agreement"] for row in table["rows"] if (row["file"] or "").endswith(".tflite"))
    assert least > 0, table["rows"]
    strict = tmp_path / "strict.yaml"
    strict.write_text(TINY_RECIPE + f"deploy: {{max_disagreement: {least / 2}}}\n")
    refused = subprocess.run(command[:4] + [str(strict)] + command[5:] + ["--resume"], capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert "Error: no file passes the deploy gates on cpu" in refused.stderr
    decision = json.loads((run.path / "deploy.json").read_text())
    assert decision["status"] == "none_passed" and decision["recommended"] is None
    assert len(decision["rejected"]) == len([r for r in table["rows"] if (r["file"] or "").endswith(".tflite")])
    assert "<span class='fail'>nothing recommended</span>" in run.report_html.read_text()


def test_new_gates_do_not_block_a_resume(tmp_path):
    """Gates and benchmark settings check the artifacts; they do not make them, so they may change."""
    saved = resolve({})
    run = _fake_run(tmp_path, saved)
    looser = apply_overrides(saved, {"parity.max_accuracy_drop": 3.0, "benchmark.threads": 4})
    check_run_dir(run, looser, "digits", resume=True, overwrite=False)
