"""`edgecnn pipeline`: stages in order, each skipped when its artifact is there; resume after a kill."""

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
TINY_RECIPE = """
name: tiny_pipeline
model: {architecture: mobilenet_v1_tiny, size: 16}
data: {augment: false}
train: {epochs: 4, batch_size: 32}
prune: {sparsity: 0.5, epochs: 1}
qat: {enabled: true, epochs: 1, preserve_sparsity: true}
export: {modes: [fp32, int8], io: int8}
parity: {max_disagreement: 0.5, max_accuracy_drop: 50.0}
benchmark: {threads: 1, formats: [fp32, int8]}
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


@pytest.mark.slow
def test_interrupted_pipeline_resumes_where_it_stopped(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "edgecnn", "pipeline", str(recipe), "--data", "digits", "--out", str(out)]
    run = RunDir(out)

    # Interrupt with Ctrl-C (SIGINT) as soon as training has finished.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not run.float_model.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.float_model.exists(), proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGINT)
    _, first_log = proc.communicate(timeout=120)
    trained_at = run.float_model.stat().st_mtime_ns
    assert not run.benchmark_json.exists() or proc.returncode == 0

    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "train: done already (float.keras present), skipped" in resumed.stderr
    assert run.float_model.stat().st_mtime_ns == trained_at  # not trained again
    for artifact in (run.pruned_model, run.qat_model, run.export_path("fp32"), run.export_path("int8"),
                     run.benchmark_json, run.report_html):
        assert artifact_is_valid(artifact), artifact
    assert "top-1 agreement" in resumed.stdout

    # The demo's last step on this run: a labelled clip of held-out images through `edgecnn run`.
    from edgecnn.pipeline.clip import live_loop_accuracy, write_labelled_clip
    from edgecnn.pipeline.demo import _run_live_loop

    clip = write_labelled_clip(run.split_items("test"), run.labels(), tmp_path / "clip.avi", limit=40)
    _run_live_loop(run.export_path("int8"), clip, tmp_path / "live.jsonl")
    live = live_loop_accuracy(tmp_path / "live.jsonl", clip)
    assert live["frames"] == 40 * 3
    # The tiny model is ~85-90% accurate on the test split; frames misaligned with their labels
    # would score near chance (10%).
    assert live["accuracy"] > 0.6

    # A third call has nothing left to do.
    again = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert again.stderr.count("done already") == len(stages_for(resolve(__import__("yaml").safe_load(TINY_RECIPE))))


def test_new_gates_do_not_block_a_resume(tmp_path):
    """Gates and benchmark settings check the artifacts; they do not make them, so they may change."""
    saved = resolve({})
    run = _fake_run(tmp_path, saved)
    looser = apply_overrides(saved, {"parity.max_accuracy_drop": 3.0, "benchmark.threads": 4})
    check_run_dir(run, looser, "digits", resume=True, overwrite=False)
