"""Compare classify --json answers from the emulated Pi with the host's (tools/pi_emulation.sh).

    python tools/pi_emulation_compare.py HOST.jsonl GUEST.jsonl --step 0.00390625

Images are matched by their path below ``images/``. It fails (exit 1) when an image is missing,
when any class's score differs by more than ``--step`` (one quantization step of the output;
ARM and x86 kernels may round differently), or when the top-1 label differs although the
host's top two scores are exactly tied (ties must break identically: lower index first) or
further apart than one step. A label change inside a near-tie (gap <= one step, not exactly
tied on both) is the rounding difference itself: it is reported, not failed. It also fails when
no image had an exact tie, because then ties were not checked at all.
"""

from __future__ import annotations

import argparse
import json
import sys

ROUNDING = 1e-6  # classify --json rounds scores to 6 decimals


def _load(path: str) -> dict[str, dict]:
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("{"):
                row = json.loads(line)
                rows[row["path"].split("/images/", 1)[-1]] = row
    return rows


def _scores(row: dict) -> dict[str, float]:
    return {entry["label"]: entry["score"] for entry in row["top_k"]}


def _top_gap(row: dict) -> float:
    ranked = [entry["score"] for entry in row["top_k"]]
    return ranked[0] - ranked[1] if len(ranked) > 1 else float("inf")


def compare(host: dict[str, dict], guest: dict[str, dict], step: float) -> tuple[list[str], dict]:
    problems = [f"{name}: missing in the emulation" for name in sorted(set(host) - set(guest))]
    stats = {"images": 0, "max_score_diff": 0.0, "exact_ties": 0, "near_tie_label_changes": 0}
    for name in sorted(set(host) & set(guest)):
        h, g = host[name], guest[name]
        hs, gs = _scores(h), _scores(g)
        stats["images"] += 1
        if set(hs) != set(gs):
            problems.append(f"{name}: classes differ: host {sorted(hs)}, emulation {sorted(gs)}")
            continue
        diff = max(abs(hs[k] - gs[k]) for k in hs)
        stats["max_score_diff"] = max(stats["max_score_diff"], diff)
        if diff > step + ROUNDING:
            problems.append(f"{name}: scores differ by {diff:.6f} > one step {step:.6f}: host {hs}, emulation {gs}")
        tied = _top_gap(h) == 0.0 and _top_gap(g) == 0.0
        stats["exact_ties"] += tied
        if h["label"] == g["label"]:
            continue
        if tied or _top_gap(h) > step + ROUNDING:
            problems.append(f"{name}: top-1 {g['label']!r} in the emulation, {h['label']!r} on the host"
                            + (" (an exact tie broken differently)" if tied else ""))
        else:
            stats["near_tie_label_changes"] += 1
    if stats["exact_ties"] == 0:
        problems.append("no image had exactly tied top scores: tie-breaking was not checked")
    return problems, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("guest")
    parser.add_argument("--step", type=float, required=True, help="one quantization step of the scores")
    args = parser.parse_args(argv)
    problems, stats = compare(_load(args.host), _load(args.guest), args.step)
    print(f"compared {stats['images']} images: max score difference {stats['max_score_diff']:.6f} "
          f"(bound {args.step:.6f}), {stats['exact_ties']} exact ties broken identically, "
          f"{stats['near_tie_label_changes']} near-tie label changes")
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
