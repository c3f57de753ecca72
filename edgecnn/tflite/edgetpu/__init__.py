"""The Coral Edge TPU: its op rules (``rules``), its compiler (``compiler``) and their common report (``report``)."""

from edgecnn.tflite.edgetpu.compiler import (
           compile_for_edgetpu,
           compiler_hint,
           find_edgetpu_compiler,
           parse_compiler_log,
)
from edgecnn.tflite.edgetpu.report import EdgeTpuReport, OpPlacement, format_report
from edgecnn.tflite.edgetpu.rules import check_model

__all__ = ["EdgeTpuReport", "OpPlacement", "check_model", "compile_for_edgetpu", "compiler_hint",
           "find_edgetpu_compiler", "format_report", "parse_compiler_log"]
