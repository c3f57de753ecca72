#!/usr/bin/env bash
# Mutation score of the modules that decide correctness (issue 15): mutmut changes one operator,
# constant or call at a time in a module and runs that module's own tests against each change; a
# change that no test notices "survives". A benchmark, not part of .ci/run. On 2 shared cores: 1 to 5 minutes
# a module, except the live loop and capture (threaded tests, timeouts): over half an hour each.
#
#   tools/mutation_score.sh                 # every module below
#   tools/mutation_score.sh preprocess loop # only these
#
# MUTATION_RESUME=1 continues an interrupted module run where it stopped instead of starting afresh.
# MUTATION_ONLY='edgecnn.runtime.live.loop.xǁRunningStatsǁ*' runs only the mutants matching it (the others
# are generated but not run, and count in "other").
# Needs mutmut (pip install -e '.[mutation]'). Each module runs in its own copy of the working tree
# under $MUTATION_WORK (default /tmp/edgecnn-mutation/<module>), so mutmut's mutants/ folder and its
# [tool.mutmut] settings never touch the checkout. Writes, per module, <module>/survivors.txt (mutmut's
# list of surviving mutants; `cd <module> && mutmut show NAME` prints the diff) and appends a line to
# scores.tsv: module, source file, killed, timed out, survived (including mutants that no selected
# test runs), other (skipped, crashed), kill rate = (killed + timed out) / (those + survived). Run it with `nice -n 19` on a shared box.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
work=${MUTATION_WORK:-/tmp/edgecnn-mutation}
jobs=${MUTATION_JOBS:-1}

# module | source file mutated | the targeted tests that run against each mutant (fast, TF-free where possible).
# test_metadata.py's tests on a Keras-converted model are left out (each mutant would convert again, ~6 s
# under load; test_standard.py's TF-free models cover the same round trips). Latency assertions are deselected: under load they fail on the unchanged code, and a mutant "killed" by
# load is no kill.
MODULES="
preprocess|edgecnn/runtime/preprocess.py|tests/runtime/test_preprocess.py tests/runtime/test_preprocess_edges.py tests/imagesets/test_imagesets.py tests/test_environment_faults.py::test_unreadable_class_folder_says_permission_denied_not_empty
metadata|edgecnn/tflite/metadata.py|tests/tflite/test_metadata_edges.py tests/tflite/test_standard.py tests/tflite/test_metadata.py::test_non_models_are_refused_before_any_interpreter tests/tflite/test_metadata.py::test_invalid_metadata_is_refused tests/tflite/test_metadata.py::test_metadata_that_is_not_json_is_refused tests/tflite/test_metadata.py::test_labels_file
standard|edgecnn/tflite/standard.py|tests/tflite/test_standard.py tests/tflite/test_metadata_edges.py tests/tflite/test_metadata.py::test_non_models_are_refused_before_any_interpreter tests/tflite/test_metadata.py::test_invalid_metadata_is_refused tests/tflite/test_metadata.py::test_metadata_that_is_not_json_is_refused tests/tflite/test_metadata.py::test_labels_file
stats|edgecnn/parity/stats.py|tests/parity/test_stats.py tests/parity/test_gates_statistics.py tests/parity/test_parity.py::test_compare_scores_counts_agreement_errors_and_accuracy tests/parity/test_parity.py::test_top5_agreement_is_reference_choice_within_candidate_top5 tests/parity/test_parity.py::test_gates_pass_within_limits_and_fail_with_exit_code_3 tests/parity/test_parity.py::test_gate_values_are_checked tests/parity/test_parity.py::test_accuracy_gate_needs_labels
gates|edgecnn/parity/gates.py|tests/parity/test_gates_statistics.py tests/parity/test_stats.py tests/parity/test_parity.py::test_compare_scores_counts_agreement_errors_and_accuracy tests/parity/test_parity.py::test_top5_agreement_is_reference_choice_within_candidate_top5 tests/parity/test_parity.py::test_gates_pass_within_limits_and_fail_with_exit_code_3 tests/parity/test_parity.py::test_gate_values_are_checked tests/parity/test_parity.py::test_accuracy_gate_needs_labels tests/cli/test_hostile_numbers.py::test_library_validate_gates_refuses_nan
loop|edgecnn/runtime/live/loop.py|tests/runtime/live/test_loop.py tests/runtime/live/test_running_stats.py tests/runtime/live/test_modes.py --deselect=tests/runtime/live/test_modes.py::test_live_sources_keep_the_newest_frame_policy_in_both_modes
capture|edgecnn/runtime/live/capture.py|tests/runtime/live/test_sources.py tests/runtime/live/test_loop.py
export_plan|edgecnn/export_plan.py|tests/training/export/test_export_plan.py
recipe|edgecnn/recipe.py|tests/test_recipe.py
"

"$python" -c "import mutmut" 2>/dev/null || { echo "Error: mutmut is not installed; pip install -e '.[mutation]'" >&2; exit 1; }
mutmut=$(dirname "$python")/mutmut
mkdir -p "$work"

copy_tree() {  # the working tree as git sees it (tracked and untracked-not-ignored files), no .git
  (cd "$repo" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | (cd "$1" && tar xf -)
}

write_settings() {  # dir source tests: mutmut's settings, in the copy's pyproject.toml only
  local source=$2 tests=$3
  {
    echo
    echo "[tool.mutmut]"
    echo 'source_paths = ["edgecnn"]'
    echo "only_mutate = [\"$source\"]"
    echo "pytest_add_cli_args_test_selection = [$(printf '"%s", ' $tests)]"
    echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]'
    echo 'also_copy = ["models", "devices", "docs", "tools", "README.md"]'
    # mutmut times out a mutant at 15x the test's clean duration plus this; a module-scoped fixture's
    # set-up (test_metadata.py converts a Keras model, ~6 s under load) is measured against one test only,
    # so without slack the others "time out" in every mutant and count as killed when nothing failed.
    echo "timeout_constant = ${MUTATION_TIMEOUT_S:-30}"
  } >>"$1/pyproject.toml"
}

score_module() {
  local name=$1 source=$2 tests=$3 dir=$work/$1
  if [ -n "${MUTATION_RESUME:-}" ] && [ -d "$dir/mutants" ]; then
    echo "$name: resuming in $dir (mutants already run keep their result)" >&2
  else
    rm -rf "$dir" && mkdir -p "$dir"
    copy_tree "$dir"
    write_settings "$dir" "$source" "$tests"
  fi
  local start=$SECONDS
  (cd "$dir" && env -u PYTHONPATH "$mutmut" run --max-children "$jobs" ${MUTATION_ONLY:-} >"$dir/run.log" 2>&1) || {
    echo "$name: mutmut failed, see $dir/run.log" >&2; tail -n 20 "$dir/run.log" >&2; return 1; }
  (cd "$dir" && env -u PYTHONPATH "$mutmut" results >"$dir/survivors.txt" 2>&1 || true)
  (cd "$dir" && env -u PYTHONPATH "$mutmut" export-cicd-stats >/dev/null)
  "$python" - "$dir/mutants/mutmut-cicd-stats.json" "$name" "$source" "$((SECONDS - start))" "$work/scores.tsv" <<'EOF'
import json, sys
stats = json.load(open(sys.argv[1]))
name, source, seconds, out = sys.argv[2:6]
# A mutant no selected test runs ("no tests") is a survivor too: nothing would notice it.
killed, timeouts = stats["killed"], stats.get("timeout", 0)
survived = stats["survived"] + stats.get("no_tests", 0)
other = stats["total"] - killed - timeouts - survived
rate = 100.0 * (killed + timeouts) / max(1, killed + timeouts + survived)
line = f"{name}\t{source}\t{killed}\t{timeouts}\t{survived}\t{other}\t{rate:.1f}%\t{seconds}s"
print(line)
with open(out, "a") as f:
    f.write(line + "\n")
EOF
}

echo -e "module\tsource\tkilled\ttimeout\tsurvived\tother\tkill rate\ttime"
names=${*:-$(awk -F'|' 'NF == 3 {print $1}' <<<"$MODULES")}
for wanted in $names; do  # in the order given
  line=$(grep "^$wanted|" <<<"$MODULES") || { echo "Error: no module '$wanted' in $0" >&2; exit 2; }
  IFS='|' read -r name source tests <<<"$line"
  score_module "$name" "$source" "$tests" || status=1  # the others still run
done
exit "${status:-0}"
