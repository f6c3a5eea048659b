"""How a frame goes into engines of a fixed input size, and their outputs back to the frame.

``stretch`` (the default) resizes the frame to the whole input, whatever its shape: right
for engines built at the frames' shape, a squash otherwise (said once, by stretch_note).
``pad`` keeps the frame's shape: it is scaled to fit the input and centred in it, the
rest filled with the models' mean colour (letterboxed), and every output is cropped back
to the frame's part, so results, pictures and evaluation see the frame as it was, at the
engines' scale (depth is read as a stretched frame's: unpad_outputs). ``crop`` keeps it
too, scaled to cover the input instead: the engines see the frame's middle at a larger
scale and nothing of its edges beyond (a 16:9 camera into 2:1 engines loses a sixth of its
height, sky and bonnet, where pad would give it a sixth of the input as padding), and the
outputs are laid back over the whole frame, the cut edges unknown (void classes, no
depth). Pad and crop are for engines that cannot be rebuilt at the frames' shape: INT8
ones calibrated elsewhere, TensorRT plans built on another machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from edge.errors import ConfigError

FITS = ("stretch", "pad", "crop")
# the models' pixel mean (configs.PanopticFPNConfig.pixel_mean): after their normalisation
# the padding is zero, what their convolutions see beyond any picture's edge
PAD_RGB = (124, 116, 104)
# the outputs that are pictures of the input (N, [C,] H, W): panoptic_fpn and depth models
MAPS = frozenset({"sem_logits", "sem_labels", "depth", "disparity"})
# a crop keeping less of a frame than this is refused: the engines would see a sliver, and
# the frame at their scale (which the outputs are laid over) would be vast
MIN_CROP_KEPT = 1 / 16
# what a map says where a cropped frame's edges were cut: void (train id 255), no depth
CUT_FILL = {"sem_labels": 255, "sem_logits": 0.0, "depth": 0.0, "disparity": 0.0}


def check_fit(fit: str) -> str:
    if fit not in FITS:
        raise ConfigError(f"fit {fit!r}: expected one of {', '.join(FITS)}")
    return fit


def fitted_hw(frame_hw: tuple[int, int], input_hw: tuple[int, int], fit: str) -> tuple[int, int]:
    """The size a frame of ``frame_hw`` is resized to for the engines' input: the input's,
    stretched; padded, the largest of the frame's shape that fits in it; cropped, the
    smallest that covers it (sides rounded to pixels)."""
    if fit == "stretch":
        return input_hw
    (fh, fw), (ih, iw) = frame_hw, input_hw
    if fit == "crop":
        scale = max(ih / fh, iw / fw)
        hw = max(ih, round(fh * scale)), max(iw, round(fw * scale))
        if (kept := ih * iw / (hw[0] * hw[1])) < MIN_CROP_KEPT:
            raise ConfigError(
                f"--fit crop would keep {kept:.1%} of each {fw}x{fh} frame in engines of {ih}x{iw} (at "
                f"least {MIN_CROP_KEPT:.0%} expected): pad them (--fit pad), or use engines nearer the "
                "frames' shape"
            )
        return hw
    scale = min(ih / fh, iw / fw)
    return min(ih, max(1, round(fh * scale))), min(iw, max(1, round(fw * scale)))


def seen_part(frame_hw: tuple[int, int], input_hw: tuple[int, int], fit: str) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the frame, in its own pixels, that the engines see: all
    of it stretched or padded; cropped, its middle (input_tensor's crop, scaled back)."""
    fh, fw = frame_hw
    if fit != "crop":
        return 0, 0, fh, fw
    hw = fitted_hw(frame_hw, input_hw, fit)
    y, x = pad_offset(hw, input_hw)
    sy, sx = fh / hw[0], fw / hw[1]
    # outward to whole pixels: every pixel the engines saw any of (1e-9: a product's rounding)
    return (
        math.floor(-y * sy + 1e-9),
        math.floor(-x * sx + 1e-9),
        math.ceil((-y + input_hw[0]) * sy - 1e-9),
        math.ceil((-x + input_hw[1]) * sx - 1e-9),
    )


def covers(hw: tuple[int, int], input_hw: tuple[int, int]) -> bool:
    """Whether a frame resized to ``hw`` covers the input (cropped to its middle), rather
    than fitting in it (padded; a frame of the input's size does both)."""
    return hw[0] >= input_hw[0] and hw[1] >= input_hw[1]


def pad_offset(hw: tuple[int, int], input_hw: tuple[int, int]) -> tuple[int, int]:
    """(y, x) of the top-left corner of a part of ``hw`` centred in the input; negative
    where the part is larger (cropped: minus the input's corner in the part)."""
    return (input_hw[0] - hw[0]) // 2, (input_hw[1] - hw[1]) // 2


def input_tensor(resized: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """The engines' tensor [1, 3, H, W] float32 0..255: ``resized`` (HxWx3 RGB), centred
    in PAD_RGB where it is smaller than ``input_hw``, its middle where it is larger."""
    h, w = resized.shape[:2]
    planar = resized.transpose(2, 0, 1)[None]
    if (h, w) == input_hw:
        return np.ascontiguousarray(planar, dtype=np.float32)
    y, x = pad_offset((h, w), input_hw)
    if covers((h, w), input_hw):
        return np.ascontiguousarray(
            planar[:, :, -y : -y + input_hw[0], -x : -x + input_hw[1]], dtype=np.float32
        )
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
    """One engine's outputs for a frame resized to ``hw`` and centred on the input (padded
    where smaller, cropped to its middle where larger: input_tensor), in that frame's pixels.

    The maps (MAPS, at the input's size or at a stride of it: the semantic logits at 1/4)
    are cropped to the frame's part, outward to whole cells at a stride; of a cropped frame
    they are laid over the whole of it, the edges the engines did not see filled with
    CUT_FILL (void, no depth), at whole cells. ``depth`` is also scaled by the frame's width
    over the input's: a monocular model reads a smaller picture as farther away and a larger
    one as nearer, and so it reads the frame as stretching it would (which keeps the input's
    width where the frame is taller than the engines: the camera's horizontal field of view,
    as the model was trained). ``disparity``, the model's unitless sigmoid, is only placed.
    The boxes are moved by the part's corner; they may reach into the padding, and are
    clipped only where the instances are made (panoptic.fuse), since the masks are relative
    to them. The rest is as the engine gave it."""
    if hw == input_hw:
        return dict(outputs)
    (h, w), (y, x) = hw, pad_offset(hw, input_hw)
    cropped = covers(hw, input_hw)
    out = dict(outputs)
    for name in MAPS & outputs.keys():
        value = outputs[name]
        sy, sx = input_hw[0] / value.shape[-2], input_hw[1] / value.shape[-1]
        if cropped:
            whole = np.full(
                (*value.shape[:-2], math.ceil(h / sy), math.ceil(w / sx)), CUT_FILL[name], dtype=value.dtype
            )
            top, left = math.floor(-y / sy), math.floor(-x / sx)
            whole[..., top : top + value.shape[-2], left : left + value.shape[-1]] = value
            value = whole
        else:
            rows = slice(math.floor(y / sy), math.ceil((y + h) / sy))
            cols = slice(math.floor(x / sx), math.ceil((x + w) / sx))
            value = value[..., rows, cols]
        out[name] = value * np.float32(w / input_hw[1]) if name == "depth" else np.ascontiguousarray(value)
    if "boxes" in outputs:
        out["boxes"] = outputs["boxes"] - np.array([x, y, x, y], dtype=outputs["boxes"].dtype)
    return out
