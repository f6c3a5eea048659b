from __future__ import annotations

import pytest

from edge.cli import main


def test_models_lists_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "panoptic_fpn_r50" in out and "depth_tiny" in out


def test_info_reports_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend onnxruntime" in out and "CPUExecutionProvider" in out
    assert "backend tensorrt" in out


def test_build_error_is_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--models", "nope", "--quiet"]) == 2
    assert "error: unknown model 'nope'" in capsys.readouterr().err
