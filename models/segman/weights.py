"""Official SegMAN checkpoints (yunxiangfu2001/SegMAN) mapped onto :class:`models.segman.SegMAN`'s key names.

Two layouts are read:

* the ImageNet-1k encoder files of the official release (``SegMAN_Encoder_{t,s,b}.pth.tar``): a dict whose
  ``state_dict_ema`` (preferred, as the official segmentation code does) or ``state_dict`` holds the encoder as
  ``patch_embed.*``, ``layers.{2i}.*`` (stage i) and ``layers.{2i+1}.*`` (downsampling after stage i); its
  ``classifier.*`` and the stored RoPE angles (``rope.angle``, recomputed here) are dropped;
* MMSeg segmentor checkpoints of the official repository: ``backbone.*`` (the layout above) and
  ``decode_head.*`` (``linear_c{2,3,4}``, ``linear_fuse``, ``conv_downsample_{2,4}``, ``reduce_channels``,
  ``vssm``, ``short_path``, ``image_pool.1``, ``proj_out``, ``cat``, ``conv_seg``).

:func:`to_official` is the inverse map (segmentor layout), used to check the mapping both ways.
"""

from __future__ import annotations

import os
import re

from torch import Tensor

from models.checkpoint import read_checkpoint, unwrap_state_dict

__all__ = ["from_official", "read_official", "to_official"]

#: (official, ours) renames inside an encoder block, applied after the stage prefix
_BLOCK_RENAMES = (
    ("token_mixer.rpb.0", "mixer.rpb"),
    ("token_mixer.rpb.1", "mixer.global_rpb"),
    ("token_mixer.dwconv.", "mixer.ssm_conv."),
    ("token_mixer.ssm.", "mixer.ss2d."),
    ("token_mixer.norm.", "mixer.ssm_norm."),
    ("token_mixer.", "mixer."),
    ("mlp.", "ffn."),
    ("layer_scale1.", "gamma1."),
    ("layer_scale2.", "gamma2."),
)
#: (official, ours) renames of decoder prefixes
_DECODER_RENAMES = (
    ("linear_c2.proj.", "proj_c2."),
    ("linear_c3.proj.", "proj_c3."),
    ("linear_c4.proj.", "proj_c4."),
    ("linear_fuse.", "fuse."),
    ("conv_downsample_2.", "down2."),
    ("conv_downsample_4.", "down4."),
    ("reduce_channels.", "reduce."),
    ("image_pool.1.", "image_pool."),
    ("vssm.token_mixer.", "context.ss2d."),
    ("vssm.mlp.", "context.ffn."),
    ("vssm.", "context."),
    ("cat.", "merge."),
    ("conv_seg.", "classifier."),
)
_DROPPED = re.compile(r"(^classifier\.|\.rope\.angle$)")
_LAYER = re.compile(r"^layers\.(\d+)\.(.*)$")
_STAGE = re.compile(r"^stages\.(\d+)\.(.*)$")
_DOWN = re.compile(r"^downsamples\.(\d+)\.(.*)$")


def _rename(key: str, pairs, forward: bool) -> str:
    for official, ours in pairs if forward else tuple((b, a) for a, b in pairs):
        if key.startswith(official):
            return ours + key[len(official) :]
    return key


def _encoder_key(key: str) -> str | None:
    """Official encoder key (no ``backbone.``) -> our ``encoder.*`` key, or None for dropped tensors."""
    if _DROPPED.search(key):
        return None
    if key.startswith("patch_embed."):
        return "encoder.stem." + key[len("patch_embed.") :]
    m = _LAYER.match(key)
    if m is None:
        return "encoder." + key  # unknown: reported as unexpected by the loader
    index, rest = int(m.group(1)), m.group(2)
    if index % 2:
        return f"encoder.downsamples.{index // 2}.{rest}"
    if rest.startswith("blocks."):
        j, _, tail = rest[len("blocks.") :].partition(".")
        rest = f"blocks.{j}." + _rename(tail, _BLOCK_RENAMES, True)
    return f"encoder.stages.{index // 2}.{rest}"


def from_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official encoder or segmentor state dict to our keys (dropped: ImageNet classifier, RoPE angles).

    LayerScale weights ``(C, 1, 1, 1)`` (a depth-wise conv in the official code) become ``(C,)``.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("decode_head."):
            new = "decoder." + _rename(key[len("decode_head.") :], _DECODER_RENAMES, True)
        else:
            new = _encoder_key(key[len("backbone.") :] if key.startswith("backbone.") else key)
        if new is None:
            continue
        if re.search(r"\.gamma[12]\.weight$", new):
            value = value.reshape(-1)
        out[new] = value
    return out


def to_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict in the official MMSeg segmentor layout (``backbone.*``, ``decode_head.*``); inverse of
    :func:`from_official` on segmentor checkpoints."""
    out = {}
    for key, value in state.items():
        if key.startswith("decoder."):
            new = "decode_head." + _rename(key[len("decoder.") :], _DECODER_RENAMES, False)
        elif key.startswith("encoder.stem."):
            new = "backbone.patch_embed." + key[len("encoder.stem.") :]
        elif m := _DOWN.match(key[len("encoder.") :]):
            new = f"backbone.layers.{2 * int(m.group(1)) + 1}.{m.group(2)}"
        elif m := _STAGE.match(key[len("encoder.") :]):
            rest = m.group(2)
            if rest.startswith("blocks."):
                j, _, tail = rest[len("blocks.") :].partition(".")
                rest = f"blocks.{j}." + _rename(tail, _BLOCK_RENAMES, False)
            new = f"backbone.layers.{2 * int(m.group(1))}.{rest}"
        else:
            new = key
        if re.search(r"\.layer_scale[12]\.weight$", new):
            value = value.reshape(-1, 1, 1, 1)
        out[new] = value
    return out


def read_official(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read an official checkpoint through :func:`models.checkpoint.read_checkpoint` and return our keys.

    The EMA weights (``state_dict_ema``) are taken when the file has them, as the official code does.

    Raises:
        FileNotFoundError: missing file. ValueError: unreadable file or no tensors.
    """
    obj = read_checkpoint(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict_ema"), dict):
        obj = obj["state_dict_ema"]
    return from_official(unwrap_state_dict(obj, path))
