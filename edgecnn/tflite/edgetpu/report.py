"""The Edge TPU report: where each operation of a model runs, from edgecnn's check or the compiler's log.

``rules.check_model`` and ``compiler.report_from_compiler`` both produce an ``EdgeTpuReport``;
``format_report`` is what the CLI prints.
"""

from __future__ import annotations

import dataclasses

MAPPED = "Mapped to Edge TPU"  # the compiler's status for an op that runs on the Edge TPU
# The compiler's status for a supported op pushed to the CPU by an earlier unsupported one (one subgraph only).
COMPILER_AFTER_FIRST = "More than one subgraph is not supported"


@dataclasses.dataclass
class OpPlacement:
    index: int
    op: str
    on_edgetpu: bool
    status: str  # MAPPED, or why the op runs on the CPU


@dataclasses.dataclass
class EdgeTpuReport:
    compatible: bool
    problems: list[str]  # model-level: data types, dynamic shapes, batch
    ops: list[OpPlacement]
    notes: list[str] = dataclasses.field(default_factory=list)
    source: str = "edgecnn check"  # or "edgetpu_compiler <version>"
    compiled_path: str | None = None
    compiler_log: str | None = None

    @property
    def unsupported_ops(self) -> list[OpPlacement]:
        """Ops that do not map by themselves (not those only pushed to the CPU by an earlier one)."""
        return [p for p in self.ops if not p.on_edgetpu and not p.status.startswith("runs on the CPU: it comes after")
                and p.status != COMPILER_AFTER_FIRST]

    @property
    def first_unsupported(self) -> OpPlacement | None:
        # The compiler's table groups ops by kind, so an op it pushed to the CPU may be listed before the cause.
        return next(iter(self.unsupported_ops), None) or next((p for p in self.ops if not p.on_edgetpu), None)

    def counts(self) -> dict[str, int]:
        on_tpu = sum(p.on_edgetpu for p in self.ops)
        return {"edgetpu": on_tpu, "cpu": len(self.ops) - on_tpu}

    def to_dict(self) -> dict:
        return {
            "compatible": self.compatible,
            "source": self.source,
            "problems": self.problems,
            "unsupported_ops": [{"index": p.index, "op": p.op, "reason": p.status} for p in self.unsupported_ops],
            "operations": self.counts(),
            "ops": [dataclasses.asdict(p) for p in self.ops],
            "notes": self.notes,
            "compiled_path": self.compiled_path,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EdgeTpuReport":
        """The inverse of ``to_dict`` (an export's checks are stored as dicts)."""
        return cls(d["compatible"], d["problems"], [OpPlacement(**p) for p in d["ops"]], notes=d["notes"],
                   source=d["source"], compiled_path=d.get("compiled_path"))


def format_report(report: EdgeTpuReport) -> str:
    counts = report.counts()
    verdict = "compatible: every operation maps to the Edge TPU" if report.compatible else "NOT fully compatible"
    lines = [f"Edge TPU ({report.source}): {verdict}; {counts['edgetpu']} op(s) on the Edge TPU, "
             f"{counts['cpu']} on the CPU"]
    lines += [f"  problem: {p}" for p in report.problems]
    first = report.first_unsupported
    if first is not None:
        lines.append(f"  first unsupported: #{first.index} {first.op}: {first.status}")
        lines.append("  the compiler partitions once: from that op onward everything runs on the CPU")
    for p in report.unsupported_ops[1:6]:
        lines.append(f"  also unsupported: #{p.index} {p.op}: {p.status}")
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)
