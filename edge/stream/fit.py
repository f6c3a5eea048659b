"""How a frame goes into engines of a fixed input size, and their outputs back to the frame.

``stretch`` (the default) resizes the frame to the whole input, whatever its shape: right
for engines built at the frames' shape, a squash otherwise (said once, by stretch_note).
``pad`` keeps the frame's shape: it is scaled to fit the input and centred in it, the
rest filled with the models' mean colour (letterboxed), and every output is cropped back
to the frame's part, so results, pictures and evaluation see the frame as it was, at the
engines' scale (depth is read as a stretched frame's: unpad_outputs). For engines that
cannot be rebuilt at the frames' shape: INT8 ones calibrated elsewhere, TensorRT plans
built on another machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from edge.errors import ConfigError

FITS = ("stretch", "pad")
# the models' pixel mean (configs.PanopticFPNConfig.pixel_mean): after their normalisation
# the padding is zero, what their convolutions see beyond any picture's edge
PAD_RGB = (124, 116, 104)
# the outputs that are pictures of the input (N, [C,] H, W): panoptic_fpn and depth models
MAPS = frozenset({"sem_logits", "sem_labels", "depth", "disparity"})


def check_fit(fit: str) -> str:
    if fit not in FITS:
        raise ConfigError(f"fit {fit!r}: expected one of {', '.join(FITS)}")
    return fit


def fitted_hw(frame_hw: tuple[int, int], input_hw: tuple[int, int], fit: str) -> tuple[int, int]:
    """The part of the engines' input a frame of ``frame_hw`` takes: all of it stretched;
    padded, the largest size of the frame's shape that fits (its sides rounded to pixels)."""
    if fit == "stretch":
        return input_hw
    (fh, fw), (ih, iw) = frame_hw, input_hw
    scale = min(ih / fh, iw / fw)
    return min(ih, max(1, round(fh * scale))), min(iw, max(1, round(fw * scale)))


def pad_offset(hw: tuple[int, int], input_hw: tuple[int, int]) -> tuple[int, int]:
    """(y, x) of the top-left corner of a part of ``hw`` centred in the input."""
    return (input_hw[0] - hw[0]) // 2, (input_hw[1] - hw[1]) // 2


def input_tensor(resized: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """The engines' tensor [1, 3, H, W] float32 0..255: ``resized`` (HxWx3 RGB), centred
    in PAD_RGB where it is smaller than ``input_hw``."""
    h, w = resized.shape[:2]
    planar = resized.transpose(2, 0, 1)[None]
    if (h, w) == input_hw:
        return np.ascontiguousarray(planar, dtype=np.float32)
    y, x = pad_offset((h, w), input_hw)
    tensor = np.empty((1, 3, *input_hw), dtype=np.float32)
    tensor[...] = np.asarray(PAD_RGB, dtype=np.float32).reshape(1, 3, 1, 1)
    tensor[:, :, y : y + h, x : x + w] = planar
    return tensor


def letterbox(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``image`` (HxWxC uint8) scaled whole into ``hw`` and centred on black: a picture of
    another size than a video's, which has one size."""
    import cv2

    h, w = fitted_hw((image.shape[0], image.shape[1]), hw, "pad")
    y, x = pad_offset((h, w), hw)
    canvas = np.zeros((*hw, *image.shape[2:]), dtype=image.dtype)
    canvas[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return canvas


def unpad_outputs(
    outputs: Mapping[str, np.ndarray], hw: tuple[int, int], input_hw: tuple[int, int]
) -> dict[str, np.ndarray]:
    """One engine's outputs for the frame's part ``hw`` of the input (centred, input_tensor),
    in the part's pixels.

    The maps (MAPS, at the input's size or at a stride of it: the semantic logits at 1/4)
    are cropped to the part, outward to whole cells at a stride. ``depth`` is also scaled
    by the part's share of the input's width: a monocular model reads a smaller picture as
    farther away, and so it reads the frame as stretching it would (which keeps the input's
    width where the frame is taller than the engines: the camera's horizontal field of view,
    as the model was trained). ``disparity``, the model's unitless sigmoid, is only cropped.
    The boxes are moved by the part's corner; they may reach into the padding, and are
    clipped only where the instances are made (panoptic.fuse), since the masks are relative
    to them. The rest is as the engine gave it."""
    if hw == input_hw:
        return dict(outputs)
    (h, w), (y, x) = hw, pad_offset(hw, input_hw)
    out = dict(outputs)
    for name in MAPS & outputs.keys():
        value = outputs[name]
        sy, sx = input_hw[0] / value.shape[-2], input_hw[1] / value.shape[-1]
        rows = slice(math.floor(y / sy), math.ceil((y + h) / sy))
        cols = slice(math.floor(x / sx), math.ceil((x + w) / sx))
        value = value[..., rows, cols]
        out[name] = value * np.float32(w / input_hw[1]) if name == "depth" else np.ascontiguousarray(value)
    if "boxes" in outputs:
        out["boxes"] = outputs["boxes"] - np.array([x, y, x, y], dtype=outputs["boxes"].dtype)
    return out
