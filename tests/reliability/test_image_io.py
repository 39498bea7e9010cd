"""The one image reader: every PIL mode to uint8 RGB with the documented scaling, EXIF orientation, named failures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from datasets.base import CorruptFileError
from datasets.camvid import CamVid
from datasets.image_io import ImageReadError, image_size, read_image, read_label
from tests.conftest import REPO

GREY = np.array([[0, 1000, 32768], [40000, 65535, 7]], dtype=np.uint16)


def _expected(values, full_scale):
    return np.rint(values.astype(np.float64) * 255 / full_scale).astype(np.uint8)


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(GREY).save(path)  # PIL writes a 16-bit PNG (opens as I;16 or I)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[..., 0], _expected(GREY, 65535))
    assert (rgb[..., 0] == rgb[..., 2]).all()
    assert read_label(path).tolist() == GREY.astype(np.int64).tolist()  # labels keep their 16-bit values


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16bit_tiff_modes(tmp_path, mode):
    path = tmp_path / f"{mode.replace(';', '')}.tif"
    Image.frombytes(mode, (3, 2), GREY.astype(">u2" if mode.endswith("B") else "<u2").tobytes()).save(path)
    np.testing.assert_array_equal(read_image(path)[..., 1], _expected(GREY, 65535))


def test_32bit_int_and_float_grey(tmp_path):
    big = np.array([[0, 100000], [200000, 400000]], dtype=np.int32)
    Image.fromarray(big, mode="I").save(tmp_path / "i32.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "i32.tif")[..., 0], _expected(big, 400000))
    f = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(f, mode="F").save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif")[..., 0], [[0, 64], [128, 255]])


def test_palette_rgba_la_cmyk_and_bilevel(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), rgb)
    rgba = np.dstack([rgb, np.full((2, 2), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb)  # alpha dropped, colours kept
    Image.fromarray(np.dstack([rgb[..., 0], rgb[..., 1]]), mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), np.repeat(rgb[..., :1], 3, axis=2))
    assert read_label(tmp_path / "la.png").tolist() == rgb[..., 0].tolist()  # label + alpha -> the label band
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    assert np.abs(read_image(tmp_path / "cmyk.jpg").astype(int) - rgb).max() <= 6
    Image.fromarray(np.array([[0, 255]], np.uint8)).convert("1").save(tmp_path / "one.png")
    assert read_image(tmp_path / "one.png")[0, :, 0].tolist() == [0, 255]


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[0, 0] = 255  # top-left red
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (4, 2, 3) and image_size(tmp_path / "rot.jpg") == (2, 4)
    assert out[0, 1, 0] > 200 and out[0, 0, 0] < 60  # top-left moved to top-right


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"])
def test_unreadable_files_are_named(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=f"cannot read image {path}"):
        read_image(path)
    with pytest.raises(ImageReadError, match=f"cannot read label {path}"):
        read_label(path)


def test_datasets_read_16bit_frames_through_the_reader(tmp_path):
    """A CamVid copy whose first training frame is a 16-bit grey PNG: the sample is scaled grey, not white."""
    root = tmp_path / "camvid"
    for sub in ("train", "trainannot"):
        (root / sub).mkdir(parents=True)
    src = sorted((REPO / "data" / "camvid" / "train").glob("*.png"))[0]
    grey = np.asarray(Image.open(src).convert("L")).astype(np.uint16) * 257  # 8-bit grey scaled to 16 bits
    Image.fromarray(grey).save(root / "train" / src.name)
    (root / "trainannot" / src.name).write_bytes((REPO / "data" / "camvid" / "trainannot" / src.name).read_bytes())
    ds = CamVid(root, "train", num_classes=11)
    image, _ = ds.load_pair(0)
    np.testing.assert_array_equal(image[..., 0], np.asarray(Image.open(src).convert("L")))
    (root / "train" / src.name).write_bytes(b"garbage")
    with pytest.raises(CorruptFileError, match=f"cannot read image {root / 'train' / src.name}"):
        ds.load_pair(0)
