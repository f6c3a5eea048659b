"""Training: targets from ground truth, box encoding, losses that learn, checkpoints that load."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edge.cli import main
from edge.data.synthetic import CAR, HORIZON, SyntheticDrive
from edge.errors import ConfigError, Interrupted
from edge.models.checkpoints import load_checkpoint
from edge.models.detection import decode_boxes
from edge.models.zoo import create_model
from edge.train.data import ZOOM_HORIZON, ZOOMED_SHARE, batches, targets_from_ids, zoomed_view
from edge.train.losses import depth_loss, encode_boxes, panoptic_loss
from edge.train.trainer import save_state, train
from tests.conftest import signal_when


def test_targets_from_instance_ids() -> None:
    ids = np.full((20, 30), 7, np.int32)
    ids[2:6, 3:9] = CAR * 1000 + 1
    ids[10:12, 10:11] = 24 * 1000 + 1  # 2 px: too small to train on
    t = targets_from_ids(ids)
    assert t.boxes.tolist() == [[3.0, 2.0, 9.0, 6.0]]
    assert t.classes.tolist() == [2]  # car is the third thing class
    assert t.masks.shape == (1, 20, 30) and t.masks.sum() == 24


def _drawn(
    seed: int, n: int, lanes: tuple[str, ...], cut_ins: int = 0, zoom: float = 1.0
) -> tuple[list[np.ndarray], set[str]]:
    """The images ``batches`` should give, drawn here in its documented order: a drive's
    seed, its lane where there are several, its lens with ``zoom`` (zoomed_view: how much
    larger the drive is rendered, and where the window is cut from it), its frame, whether
    it is mirrored; and the lanes drawn."""
    rng, images, drawn = np.random.default_rng(seed), [], set()
    for _ in range(n):
        drive_seed = int(rng.integers(1 << 30))
        lane = lanes[int(rng.integers(len(lanes)))] if len(lanes) > 1 else lanes[0]
        drawn.add(lane)
        scale, (top, left) = zoomed_view(rng, zoom) if zoom > 1 else (1.0, (0.0, 0.0))
        h, w = round(32 * scale), round(64 * scale)
        y, x = round((h - 32) * top), round((w - 64) * left)
        image = (
            SyntheticDrive(height=h, width=w, seed=drive_seed, lane=lane, cut_ins=cut_ins)
            .render(int(rng.integers(200)))
            .image[y : y + 32, x : x + 64]
        )
        images.append(image[:, ::-1] if rng.uniform() < 0.5 else image)
    return images, drawn


@pytest.mark.parametrize("lanes", [("centre",), ("centre", "right")])
def test_batches_draw_each_drives_lane(lanes: tuple[str, ...]) -> None:
    """With one lane the batches are those drawn before lanes existed (no draw for it);
    with several, each drive's lane is drawn after its seed."""
    got = next(batches(size=(32, 64), batch=6, seed=7, lanes=lanes)).images
    want, drawn = _drawn(7, 6, lanes)
    for image, expected in zip(got, want, strict=True):
        assert np.array_equal(image.numpy().transpose(1, 2, 0), expected.astype(np.float32))
    assert drawn == set(lanes)  # with two, both among the six


def test_batches_with_cut_ins_are_the_same_draws_with_road_users_added() -> None:
    """Cut-ins draw from each drive's own seed, not the batches' stream: the same drives,
    frames and mirrors as without them, and the road users crossing into the path are
    seen in some of the images (a person or car more than without)."""
    lanes = ("centre", "right")
    plain = next(batches(size=(32, 64), batch=8, seed=3, lanes=lanes))
    crossed = next(batches(size=(32, 64), batch=8, seed=3, lanes=lanes, cut_ins=4))
    want, _ = _drawn(3, 8, lanes, cut_ins=4)
    for image, expected in zip(crossed.images, want, strict=True):
        assert np.array_equal(image.numpy().transpose(1, 2, 0), expected.astype(np.float32))
    more = [len(c.classes) - len(p.classes) for p, c in zip(plain.instances, crossed.instances, strict=True)]
    assert min(more) >= 0 and max(more) > 0, more


def test_batches_go_through_the_sizes_in_turn() -> None:
    """With more sizes each batch is of one, in turn from ``first``, drawn from the one
    stream: the first batch is the one-size stream's first, the second the next drives
    rendered at the next size."""
    one = batches(size=(32, 64), batch=2, seed=4)
    turn = batches(size=(32, 64), batch=2, seed=4, more_sizes=((64, 128), (32, 96)))
    shapes = [tuple(next(turn).images.shape[2:]) for _ in range(4)]
    assert shapes == [(32, 64), (64, 128), (32, 96), (32, 64)]
    turn = batches(size=(32, 64), batch=2, seed=4, more_sizes=((64, 128),))
    assert torch.equal(next(turn).images, next(one).images)
    resumed = batches(size=(32, 64), batch=1, more_sizes=((64, 128),), first=3)
    assert tuple(next(resumed).images.shape) == (1, 3, 64, 128)


def test_zoomed_batches_are_windows_of_the_drives_rendered_larger() -> None:
    """With zoom, each image's lens is drawn after its lane: about half are windows of the
    drive rendered up to ``zoom`` times larger (the same world through a longer lens, its
    labels exact), the rest the camera's own view."""
    lanes = ("centre", "right")
    got = next(batches(size=(32, 64), batch=8, seed=5, lanes=lanes, cut_ins=2, zoom=2.0))
    want, _ = _drawn(5, 8, lanes, cut_ins=2, zoom=2.0)
    for image, expected in zip(got.images, want, strict=True):
        assert np.array_equal(image.numpy().transpose(1, 2, 0), expected.astype(np.float32))
    rng = np.random.default_rng(5)
    scales = []
    for _ in range(8):
        rng.integers(1 << 30), rng.integers(2)
        scales.append(zoomed_view(rng, 2.0)[0])
        rng.integers(200), rng.uniform()
    assert min(scales) == 1.0 and 1.0 < max(scales) <= 2.0, scales
    # labels are the window's too: each box lies in the image, and a thing seen larger has
    # a box to match its mask
    for t in got.instances:
        assert t.boxes.shape[0] == t.masks.shape[0] and (t.boxes[:, 2:] <= torch.tensor([64, 32])).all()


def test_zoomed_view_draws_lenses_as_documented() -> None:
    """Half the images zoomed, log-uniform in scale up to ``zoom``, the window placed so that
    the horizon lies within ZOOM_HORIZON of its height."""
    rng = np.random.default_rng(0)
    h = 256
    views = [zoomed_view(rng, 3.0) for _ in range(4000)]
    zoomed = [(s, at) for s, at in views if s > 1.0]
    assert abs(len(zoomed) / len(views) - ZOOMED_SHARE) < 0.03
    logs = np.log([s for s, _ in zoomed]) / np.log(3.0)
    assert logs.min() > 0.0 and logs.max() < 1.0 and abs(np.mean(logs < 0.5) - 0.5) < 0.04
    assert all(at == (0.5, 0.5) for s, at in views if s == 1.0)
    for scale, (top, left) in zoomed:
        assert 0.0 <= top <= 1.0 and 0.0 <= left <= 1.0
        rows = round(h * scale)
        horizon = (HORIZON * rows - round((rows - h) * top)) / h  # in the window, as a fraction
        # where the window is clipped to the image, the horizon lies nearer the camera's
        assert ZOOM_HORIZON[0] - 0.01 <= horizon <= ZOOM_HORIZON[1] + 0.01, (scale, top)
    clipped = [at[0] for _, at in zoomed if at[0] in (0.0, 1.0)]
    assert 0 < len(clipped) < len(zoomed) / 2


def test_encode_is_the_inverse_of_decode() -> None:
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(50, 2, generator=g) * 100
    ref = torch.cat([ref, ref + 5 + torch.rand(50, 2, generator=g) * 50], 1)
    gt = ref + torch.randn(50, 4, generator=g) * 2
    deltas = encode_boxes(gt, ref, (10.0, 10.0, 5.0, 5.0))
    back = decode_boxes(deltas[:, None, :].reshape(50, 4), ref, (10.0, 10.0, 5.0, 5.0))[:, 0]
    torch.testing.assert_close(back, gt, rtol=1e-4, atol=1e-3)


def test_panoptic_losses_fall_on_a_repeated_batch() -> None:
    torch.manual_seed(0)
    model = create_model("panoptic_fpn_tiny").train()
    batch = next(batches(size=(64, 128), batch=2, seed=3))
    assert sum(t.boxes.shape[0] for t in batch.instances) > 0
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    totals = []
    for _ in range(25):
        losses = panoptic_loss(model, batch, gen)
        assert set(losses) == {"rpn", "box", "mask", "semantic"}
        total = torch.stack(list(losses.values())).sum()
        assert torch.isfinite(total)
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(float(total.detach()))
    assert np.mean(totals[-5:]) < 0.7 * np.mean(totals[:3])


def test_depth_loss_falls_and_checkpoint_loads(tmp_path: Path) -> None:
    out = tmp_path / "depth.pt"
    info = train("depth_tiny", steps=12, out=out, size=(64, 128), batch=2, lr=3e-3, threads=1)
    assert info["last"]["depth"] < info["first"]["depth"]
    model = create_model("depth_tiny", seed=5)
    assert load_checkpoint(model, out) == "edge"
    batch = next(batches(size=(64, 128), batch=1, seed=9))
    with torch.no_grad():
        assert torch.isfinite(depth_loss(model.eval(), batch))


def test_object_weight_counts_thing_pixels_that_many_times() -> None:
    from edge.data.cityscapes import THING_TRAIN_IDS

    model = create_model("depth_tiny", seed=2).eval()
    batch = next(batches(size=(64, 128), batch=2, seed=4))
    things = torch.isin(batch.sem, torch.tensor(THING_TRAIN_IDS))
    assert things.any(), "the synthetic drive puts cars in the frame"
    with torch.no_grad():
        out = model(batch.images)["depth"][:, 0]
        valid = (batch.depth > model.cfg.min_depth) & (batch.depth < model.cfg.max_depth)
        err = (out.log() - batch.depth.log()).abs()
        w = torch.where(things, 3.0, 1.0)
        expected = (err * w)[valid].sum() / w[valid].sum()
        torch.testing.assert_close(depth_loss(model, batch, object_weight=3.0), expected)
        torch.testing.assert_close(depth_loss(model, batch), err[valid].mean())
        assert depth_loss(model, batch, object_weight=3.0) != depth_loss(model, batch)


def test_half_checkpoint_is_half_the_file_and_loads_close(tmp_path: Path) -> None:
    model = create_model("depth_tiny", seed=3)
    save_state(model.state_dict(), tmp_path / "full.pt")
    save_state(model.state_dict(), tmp_path / "half.pt", half=True)
    sd = torch.load(tmp_path / "half.pt", weights_only=True)
    assert {v.dtype for k, v in sd.items() if "num_batches" not in k} == {torch.float16}
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size
    loaded = create_model("depth_tiny", seed=9)
    assert load_checkpoint(loaded, tmp_path / "half.pt") == "edge"
    assert next(loaded.parameters()).dtype == torch.float32  # cast back on load
    x = torch.rand(1, 3, 64, 128) * 255
    with torch.no_grad():
        ref, got = model(x)["depth"], loaded(x)["depth"]
    torch.testing.assert_close(got, ref, rtol=5e-3, atol=1e-3)


def test_bad_training_arguments() -> None:
    with pytest.raises(ConfigError):
        train("depth_tiny", steps=0, out="x.pt")
    with pytest.raises(ConfigError, match="expected 1 .unweighted. or more"):
        train("depth_tiny", steps=1, out="x.pt", object_weight=0.5)
    with pytest.raises(ConfigError, match="applies to depth models"):
        train("panoptic_fpn_tiny", steps=1, out="x.pt", object_weight=2.0)
    for lanes in ((), ("left",), ("right", "right")):
        with pytest.raises(ConfigError, match=r"expected one or more of centre, right, each once"):
            train("depth_tiny", steps=1, out="x.pt", lanes=lanes)
    with pytest.raises(SystemExit):
        main(["train", "--model", "depth_tiny", "--out", "x.pt", "--lanes", "left"])
    with pytest.raises(ConfigError, match=r"cut-ins -1: expected 0 \(none\) or more"):
        train("depth_tiny", steps=1, out="x.pt", cut_ins=-1)
    with pytest.raises(SystemExit):
        main(["train", "--model", "depth_tiny", "--out", "x.pt", "--cut-ins", "-1"])
    for zoom in (0.5, 4.5):
        with pytest.raises(ConfigError, match=rf"zoom {zoom}: expected 1 .the camera's own view. to 4"):
            train("panoptic_fpn_tiny", steps=1, out="x.pt", zoom=zoom)
    with pytest.raises(ConfigError, match="--zoom applies to panoptic models; 'depth_tiny' is a depth model"):
        train("depth_tiny", steps=1, out="x.pt", zoom=2.0)
    assert main(["train", "--model", "depth_tiny", "--out", "x.pt", "--zoom", "2", "--quiet"]) == 2
    with pytest.raises(ConfigError, match="sizes 64x128, 32x64, 64x128: expected each once"):
        train("depth_tiny", steps=1, out="x.pt", size=(64, 128), more_sizes=((32, 64), (64, 128)))
    assert main(["train", "--model", "depth_tiny", "--out", "x.pt", "--size", "64x128", "64x128"]) == 2
    assert main(["train", "--model", "depth_tiny", "--out", "x.pt", "--size", "64x128", "50x64"]) == 2


def test_ctrl_c_ends_the_step_saves_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edge train` stopped by Ctrl-C saves the weights of the last whole step (not only
    those of the last periodic save) and says how to go on."""
    cmd = [sys.executable, "-m", "edge.cli", "train", "--model", "depth_tiny", "--steps", "100000"]
    cmd += [
        "--size",
        "64x128",
        "--batch",
        "1",
        "--threads",
        "1",
        "--quiet",
        "--out",
        "ck.pt",
        "--log",
        "log.jsonl",
    ]
    log = tmp_path / "log.jsonl"
    code, _out, err = signal_when(
        cmd, lambda: log.is_file() and log.read_text().count("\n") >= 3, cwd=tmp_path
    )
    assert code == 130, err
    last = json.loads(log.read_text().splitlines()[-1])["step"]
    assert 3 <= last < 200, "stopped before the first periodic save"
    assert f"stopped after {last} of 100000 steps; wrote ck.pt at step {last}" in err
    assert "Traceback" not in err and "the same command with --resume" in err
    assert load_checkpoint(create_model("depth_tiny", seed=5), tmp_path / "ck.pt") == "edge"
    assert (tmp_path / "ck.pt.train-state").is_file()
    assert not list(tmp_path.glob(".*.tmp"))
    # the same command with --resume checks its settings against the stopped run's first
    monkeypatch.chdir(tmp_path)
    assert main([*cmd[3:], "--resume", "--steps", "5"]) == 2
    assert "given steps 5 (the run has 100000)" in capsys.readouterr().err
    # a new run (no --resume) is told what it replaces
    assert main([*cmd[3:-4], "--out", "ck.pt", "--steps", "1"]) == 0
    said = capsys.readouterr()
    assert f"ck.pt.train-state' holds a stopped run at step {last} of 100000" in said.err
    assert re.search(
        r"wrote ck.pt after 1 steps in \d+ s; last losses depth [\d.e+-]+, total [\d.e+-]+$", said.out
    )
    assert not (tmp_path / "ck.pt.train-state").exists()  # that run finished: nothing to resume


def test_ctrl_c_in_the_last_step_offers_no_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import edge.train.losses as losses

    calls = []
    real = losses.depth_loss

    def loss_that_presses_ctrl_c(*args: Any, **kw: Any) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 2:  # in the second and last step
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kw)

    monkeypatch.setattr(losses, "depth_loss", loss_that_presses_ctrl_c)
    out = str(tmp_path / "ck.pt")
    args = ["train", "--model", "depth_tiny", "--steps", "2", "--size", "64x128", "--batch", "1"]
    assert main([*args, "--threads", "1", "--quiet", "--out", out]) == 130
    err = capsys.readouterr().err
    assert (
        f"stopped after 2 of 2 steps; wrote {out} at step 2 (the run's last)" in err and "--resume" not in err
    )
    # the press is answered as it is held, before the step in hand ends
    said = err.splitlines()
    held = said.index("interrupted: ending the training step in hand, then saving")
    assert said[held + 1] == "interrupted: finishing the outputs first", err
    assert not (tmp_path / "ck.pt.train-state").exists()


def _stop_at(at: int) -> Callable[[int, dict[str, float]], None]:
    """A training log that sends this process a real SIGINT at step ``at`` (the trainer holds it
    until the step ends)."""

    def log(step: int, _record: dict[str, float]) -> None:
        if step == at:
            os.kill(os.getpid(), signal.SIGINT)

    return log


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_resumed_run_ends_where_the_uninterrupted_one_does(tmp_path: Path) -> None:
    """Stopped by a real SIGINT after step 2 of 5 and resumed, a run makes the same updates on
    the same batches (their lenses drawn with zoom too): its weights equal those of the run
    that was never stopped."""
    kw: dict[str, Any] = {"steps": 5, "size": (64, 128), "batch": 1, "lr": 3e-3, "threads": 1, "seed": 3}
    kw["zoom"] = 2.0
    # and three sizes in turn: the resumed run's third step is the third size's, not the first's
    kw["more_sizes"] = ((32, 64), (64, 96))
    whole = train("panoptic_fpn_tiny", out=tmp_path / "whole.pt", **kw)
    out = tmp_path / "parts.pt"
    with pytest.raises(Interrupted) as stopped:
        train("panoptic_fpn_tiny", out=out, log=_stop_at(2), **kw)
    assert stopped.value.data["saved_step"] == 2
    assert (tmp_path / "parts.pt.train-state").is_file()
    with pytest.raises(ConfigError, match=r"given zoom 1.0 \(the run has 2.0\)"):
        train("panoptic_fpn_tiny", out=out, resume=True, **{**kw, "zoom": 1.0})
    steps: list[int] = []
    info = train("panoptic_fpn_tiny", out=out, resume=True, log=lambda s, _r: steps.append(s), **kw)
    assert steps == [3, 4, 5] and info["resumed_from"] == 2 and info["steps"] == 5 and info["zoom"] == 2.0
    assert info["first"] == whole["first"] and info["last"] == whole["last"]
    a, b = _params(tmp_path / "whole.pt"), _params(out)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not (tmp_path / "parts.pt.train-state").exists()


def test_a_run_stopped_before_lanes_existed_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training states saved before the lanes and cut-ins settings have neither: they were
    centre-line runs without cut-ins."""
    out = tmp_path / "ck.pt"
    kw: dict[str, Any] = {"steps": 3, "size": (64, 128), "batch": 1, "threads": 1}
    with pytest.raises(Interrupted):
        train("depth_tiny", out=out, log=_stop_at(1), **kw)
    state_file = tmp_path / "ck.pt.train-state"
    state = torch.load(state_file, weights_only=True)
    assert state["run"].pop("lanes") == ["centre"]
    assert state["run"].pop("cut_ins") == 0
    assert state["run"].pop("zoom") == 1.0
    assert state["run"].pop("more_sizes") == []
    torch.save(state, state_file)
    with pytest.raises(ConfigError, match=r"given lanes right \(the run has centre\)"):
        train("depth_tiny", out=out, resume=True, lanes=("right",), **kw)
    with pytest.raises(ConfigError, match=r"given cut_ins 2 \(the run has 0\)"):
        train("depth_tiny", out=out, resume=True, cut_ins=2, **kw)
    # and edge train's --cut-ins reaches the run: refused alike
    args = ["train", "--model", "depth_tiny", "--out", str(out), "--resume", "--steps", "3", "--quiet"]
    assert main([*args, "--size", "64x128", "--batch", "1", "--threads", "1", "--cut-ins", "3"]) == 2
    assert "given cut_ins 3 (the run has 0)" in capsys.readouterr().err
    assert train("depth_tiny", out=out, resume=True, **kw)["resumed_from"] == 1


def test_resume_refuses_what_it_cannot_continue(tmp_path: Path) -> None:
    out = tmp_path / "ck.pt"
    kw: dict[str, Any] = {"steps": 4, "size": (64, 128), "batch": 1, "threads": 1}
    with pytest.raises(ConfigError, match="no training state at .*ck.pt.train-state"):
        train("depth_tiny", out=out, resume=True, **kw)
    with pytest.raises(ConfigError, match="give one of them"):
        train("depth_tiny", out=out, resume=True, init=out, **kw)
    with pytest.raises(Interrupted):
        train("depth_tiny", out=out, log=_stop_at(1), **kw)
    with pytest.raises(
        ConfigError, match=r"given size 64x96 \(the run has 64x128\), lr 0.5 \(the run has 0.001\)"
    ):
        train("depth_tiny", out=out, resume=True, **{**kw, "size": (64, 96), "lr": 0.5})
    with pytest.raises(ConfigError, match="given model 'depth_small'"):
        train("depth_small", out=out, resume=True, **kw)
    with pytest.raises(ConfigError, match=r"given lanes centre right \(the run has centre\)"):
        train("depth_tiny", out=out, resume=True, lanes=("centre", "right"), **kw)
    with pytest.raises(ConfigError, match=r"given more_sizes 32x64 \(the run has none\)"):
        train("depth_tiny", out=out, resume=True, more_sizes=((32, 64),), **kw)
    state = tmp_path / "ck.pt.train-state"
    state.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="cannot read training state"):
        train("depth_tiny", out=out, resume=True, **kw)
    torch.save({"format": 99}, state)
    with pytest.raises(ConfigError, match="not an edge training state of format 1 .found 99"):
        train("depth_tiny", out=out, resume=True, **kw)
