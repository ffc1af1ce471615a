"""``bench colorize`` file by file, the tiled full-resolution recombination, and checkpoint loading."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from skimage.color import rgb2lab

from bench import registry
from bench.color import float_to_uint8, normalized_lab_to_rgb, rgb_to_normalized_lab
from bench.store.digest import DIGEST_KEY, seal
from bench.engine.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from bench.errors import BenchError
from bench.photo import Photo, colorize_photo, read_photo, upsample_rows

SIZE = 32


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A baseline network at 32 px through the real save/load path; seeded random weights, its last layer
    scaled up so that it predicts strong, varying colour (an untrained one predicts ab close to 0)."""
    torch.manual_seed(0)
    method = registry.create_method("baseline", size=SIZE)
    last = [m for m in method.net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(50)
        last.bias.copy_(torch.tensor([0.2, -0.3]))
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(path, method, "baseline", "sample", steps=0)
    return path


def gradient(height: int, width: int) -> np.ndarray:
    """A smooth colour image (JPEG keeps it well) with every channel varying."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    return (np.stack([x, y, 1 - (x + y) / 2], -1) * 200 + 30).astype(np.uint8)


def lightness(rgb_uint8: np.ndarray) -> np.ndarray:
    return rgb2lab(rgb_uint8[..., :3] / 255.0)[..., 0]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int, *, empty_idat: bool = False) -> bytes:
    """A PNG signature and IHDR chunk claiming this size, and no pixel data (with ``empty_idat``,
    an empty data chunk, so Pillow opens it and only decoding fails)."""
    header = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return header + (_png_chunk(b"IDAT", b"") if empty_idat else b"")


def exif_rotated_jpeg(path: Path, stored: np.ndarray, orientation: int = 6) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, quality=95, exif=exif.tobytes())


def write_awkward_photos(folder: Path) -> dict[str, np.ndarray]:
    """Every awkward kind of input; returns the valid ones' expected upright RGB (or 16-bit gray / 65535)."""
    folder.mkdir(parents=True)
    expected = {}
    rgb = gradient(24, 40)
    Image.fromarray(rgb).save(folder / "plain.jpg", quality=95)
    expected["plain.jpg"] = rgb
    Image.fromarray(rgb).save(folder / "plain.png")  # same stem as plain.jpg: the outputs must not collide
    expected["plain.png"] = rgb
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    expected["cmyk.jpg"] = rgb
    gray16 = (np.linspace(0, 65535, 30 * 50) ** 1.0).astype(np.uint16).reshape(30, 50)
    Image.fromarray(gray16).save(folder / "gray16.png")
    assert Image.open(folder / "gray16.png").mode == "I;16"
    expected["gray16.png"] = gray16.astype(np.float64) / 65535  # the reference conversion
    rgba = np.dstack([rgb, np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (24, 1))])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    expected["rgba.png"] = rgba
    palette = Image.fromarray(rgb).quantize(16)
    palette.save(folder / "palette.png")
    expected["palette.png"] = np.asarray(palette.convert("RGB"))
    Image.fromarray(np.array([[[200, 40, 90]]], np.uint8)).save(folder / "one.png")
    expected["one.png"] = np.array([[[200, 40, 90]]], np.uint8)
    stored = gradient(20, 36)
    stored[:, :6] = 0  # a dark band on the stored left edge: it must end up on top after rotation
    exif_rotated_jpeg(folder / "rotated.jpg", stored)
    expected["rotated.jpg"] = np.asarray(ImageOps.exif_transpose(Image.open(folder / "rotated.jpg")).convert("RGB"))
    # Broken ones.
    buffer = io.BytesIO()
    Image.fromarray(gradient(64, 64)).save(buffer, "JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("these are my holiday notes\n")
    (folder / "header_only.png").write_bytes(png_header_only(40, 30))
    return expected


def test_awkward_files_colorized_right_bad_ones_listed(run_cli, checkpoint, tmp_path):
    photos = tmp_path / "photos"
    expected = write_awkward_photos(photos)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.fromarray(255 - gradient(24, 40)).save(elsewhere / "plain.jpg", quality=95)  # same name, other photo
    out = tmp_path / "out"
    out.mkdir()
    (out / "rgba.png.png").write_bytes(b"an earlier output the user keeps")

    code, stdout, err = run_cli("colorize", "--checkpoint", checkpoint, photos, elsewhere / "plain.jpg",
                                "--out", out, "--device", "cpu", "--json")
    assert code == 1, err
    report = json.loads(stdout)
    status = {Path(f["input"]).relative_to(tmp_path).as_posix(): f for f in report["files"]}
    bad = ["truncated.jpg", "empty.jpg", "text.jpg", "header_only.png"]
    for name in bad:
        entry = status[f"photos/{name}"]
        assert entry["status"] == "failed" and entry["reason"].startswith(str(photos / name)), entry
        assert entry["reason"] in err and "\n" not in entry["reason"]
    assert "truncated" in status["photos/truncated.jpg"]["reason"]
    assert "empty file" in status["photos/empty.jpg"]["reason"]
    assert status["photos/rgba.png"]["status"] == "skipped" and "--overwrite" in status["photos/rgba.png"]["reason"]
    assert (out / "rgba.png.png").read_bytes() == b"an earlier output the user keeps"
    assert report["summary"] == {"colorized": 8, "failed": 4, "skipped": 1}
    assert "colorized 8, failed 4, skipped 1" in err
    assert "Traceback" not in err

    # Names keep the extension; the same name from another folder is numbered, never overwritten.
    assert status["photos/plain.jpg"]["output"] == str(out / "plain.jpg.png")
    assert status["photos/plain.png"]["output"] == str(out / "plain.png.png")
    assert status["elsewhere/plain.jpg"]["output"] == str(out / "plain.jpg-2.png")
    assert report["outputs"] == [f["output"] for f in report["files"] if f["status"] == "colorized"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.png" for name in expected if name != "rgba.png"] + ["plain.jpg-2.png", "rgba.png.png"])

    for name, reference in expected.items():
        if name == "rgba.png":
            continue
        result = np.asarray(Image.open(out / f"{name}.png"))
        assert result.shape[:2] == reference.shape[:2], name
        if name == "gray16.png":  # against the exact 16-bit value, not an 8-bit clip of it
            reference_L = rgb2lab(np.repeat(reference[..., None], 3, -1))[..., 0]
        else:
            reference_L = lightness(reference)
        # Where L + the predicted ab leaves the sRGB gamut, clipping changes L too: compare elsewhere.
        inside = ((result[..., :3] > 0) & (result[..., :3] < 255)).all(-1)
        error = np.abs(lightness(result) - reference_L)[inside]
        tolerance = 1.5 if name.endswith(".jpg") else 0.6  # JPEG (and CMYK JPEG) are lossy
        assert inside.mean() > 0.5 and error.mean() < tolerance and error.max() < 4 * tolerance, (name, error)
        assert np.abs(rgb2lab(result[..., :3] / 255)[..., 1:]).mean() > 5  # colorized
    upright = np.asarray(Image.open(out / "rotated.jpg.png"))
    assert upright.shape[:2] == (36, 20) and upright[:6].mean() < 40 < upright[10:].mean()
    other = np.asarray(Image.open(out / "plain.jpg-2.png"))
    assert np.abs(lightness(other) - lightness(255 - gradient(24, 40))).mean() < 1.5


def test_rgba_keeps_its_alpha_and_overwrite_replaces(run_cli, checkpoint, tmp_path):
    rgb = gradient(24, 40)
    alpha = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (24, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "rgba.png.png").write_bytes(b"old")
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, tmp_path / "rgba.png", "--out", out, "--overwrite")
    assert code == 0, err
    result = Image.open(out / "rgba.png.png")
    assert result.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(result)[..., 3], alpha)
    assert np.abs(lightness(np.asarray(result)) - lightness(rgb)).mean() < 0.6
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_16bit_gray_keeps_its_precision(tmp_path):
    """16-bit values are scaled by 1/65535 in float: neighbours within one 8-bit level stay apart."""
    values = np.array([[0, 100, 256, 32768, 32800, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g.png")
    Image.fromarray(values.astype(">u2")).save(tmp_path / "g.tif")  # big-endian: mode I;16B
    for name in ("g.png", "g.tif"):
        rows = read_photo(tmp_path / name, max_pixels=100).rows(0, 1)
        np.testing.assert_allclose(rows[0, 0, 0].numpy(), values[0] / 65535, rtol=0, atol=1e-7)
        assert rows[0, 0, 0, 3] < rows[0, 0, 0, 4]


def test_more_than_max_pixels_is_refused_before_decoding(run_cli, checkpoint, tmp_path):
    # 20000 x 20000 = 400 MP: past PIL's own decompression-bomb limit, which must not show as a traceback.
    (tmp_path / "huge.png").write_bytes(png_header_only(20000, 20000, empty_idat=True))
    Image.fromarray(gradient(20, 20)).save(tmp_path / "small.png")
    code, stdout, err = run_cli("colorize", "--checkpoint", checkpoint, tmp_path / "huge.png", tmp_path / "small.png",
                                "--out", tmp_path / "out")
    assert code == 1
    assert "huge.png: 20000×20000 is 400.0 megapixels, more than --max-pixels 200000000" in err
    assert "colorized 1, failed 1, skipped 0" in err and stdout.strip() == str(tmp_path / "out" / "small.png.png")
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, tmp_path / "small.png", "--out", tmp_path / "o2",
                           "--max-pixels", "399")
    assert code == 1 and "more than --max-pixels 399" in err
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's guard is back for everything else


def test_folders_recursive_with_glob_and_output_folder_inside(run_cli, checkpoint, tmp_path):
    photos = tmp_path / "photos"
    (photos / "2019" / "summer").mkdir(parents=True)
    (photos / ".thumbs").mkdir()
    for name in ("a.jpg", "b.JPG", "c.png", "2019/summer/d.jpg", ".thumbs/e.jpg", ".hidden.jpg"):
        Image.fromarray(gradient(16, 16)).save(photos / name, format="JPEG" if "jpg" in name.lower() else "PNG")
    (photos / "notes.txt").write_text("not a photo")
    out = photos / "colorized"  # inside the input folder: its files are never taken as inputs

    code, stdout, err = run_cli("colorize", "--checkpoint", checkpoint, photos, "--out", out, "--glob", "*.jpg")
    assert code == 0, err
    assert stdout.split() == [str(out / "a.jpg.png"), str(out / "b.JPG.png"), str(out / "2019/summer/d.jpg.png")]
    code, stdout, err = run_cli("colorize", "--checkpoint", checkpoint, photos, "--out", out, "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["summary"] == {"colorized": 1, "failed": 0, "skipped": 3}  # c.png is new; notes.txt not an image
    assert report["outputs"] == [str(out / "c.png.png")]

    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, photos, "--out", tmp_path / "o", "--glob", "*.gif")
    assert code == 1 and f"{photos}: no files matching --glob '*.gif'" in err
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, photos, "--out", photos)
    assert code == 2 and "is the input folder" in err
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, tmp_path / "missing.jpg", photos / "a.jpg",
                           photos / "a.jpg", "--out", tmp_path / "o3")
    assert code == 1 and "missing.jpg: no such file or folder" in err and "listed more than once" in err
    assert "colorized 1, failed 1, skipped 1" in err


def test_conflicting_size_is_refused(run_cli, checkpoint, tmp_path):
    Image.fromarray(gradient(16, 16)).save(tmp_path / "a.png")
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, tmp_path / "a.png", "--out", tmp_path / "o",
                           "--size", "64")
    assert code == 2 and "--size 64: this checkpoint was trained at 32 px" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    code, _, err = run_cli("colorize", "--checkpoint", checkpoint, tmp_path / "a.png", "--out", tmp_path / "o",
                           "--size", "32")
    assert code == 0, err


# -- the tiled recombination ----------------------------------------------------------------------
@pytest.mark.parametrize("out_size", [(1, 1), (5, 3), (37, 23), (64, 100), (7, 96)])
def test_upsample_rows_equals_interpolate(out_size):
    ab = torch.randn(1, 2, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    full = F.interpolate(ab, size=out_size, mode="bilinear", align_corners=False)
    for top, bottom in [(0, out_size[0]), (0, 1), (out_size[0] // 2, out_size[0])]:
        torch.testing.assert_close(upsample_rows(ab, out_size, top, bottom), full[:, :, top:bottom], atol=1e-5, rtol=0)


def test_tiles_give_the_untiled_result(checkpoint):
    method, _ = load_checkpoint(checkpoint)
    rgb = np.random.default_rng(3).integers(0, 256, (53, 41, 3), dtype=np.uint8)
    photo = Photo(Image.fromarray(rgb))
    one_row = np.asarray(colorize_photo(method, photo, tile_pixels=1))
    whole = np.asarray(colorize_photo(method, photo, tile_pixels=10**9))
    np.testing.assert_array_equal(one_row, whole)
    # The same, computed at full resolution in one piece (what the code did before tiling).
    with torch.no_grad():
        L_small, _ = rgb_to_normalized_lab(photo.reduced(SIZE))
        ab = F.interpolate(method.colorize(L_small), size=rgb.shape[:2], mode="bilinear", align_corners=False)
        L, _ = rgb_to_normalized_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)
        reference = float_to_uint8(normalized_lab_to_rgb(L, ab))[0].permute(1, 2, 0).numpy()
    assert np.abs(whole.astype(int) - reference).max() <= 1
    assert np.abs(lightness(whole) - lightness(rgb)).mean() < 0.6  # the photo's own L, only ab predicted
    assert lightness(whole).std() > 0 and np.abs(rgb2lab(whole / 255)[..., 1:]).mean() > 0.1


def test_read_photo_names_the_file(tmp_path):
    (tmp_path / "a.jpg").write_text("hello")
    with pytest.raises(BenchError, match=r"a\.jpg: not a readable image"):
        read_photo(tmp_path / "a.jpg", max_pixels=10**6)
    with pytest.raises(BenchError, match="is a folder"):
        read_photo(tmp_path, max_pixels=10**6)
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(BenchError, match="f.tif: 32-bit floating-point"):
        read_photo(tmp_path / "f.tif", max_pixels=10**6)


# -- checkpoints ----------------------------------------------------------------------------------
def _edited(checkpoint: Path, edit) -> dict:
    """The checkpoint's payload, edited and sealed again: well-formed bytes whose content is wrong (damaged bytes
    are another test's, in test_store_digests.py)."""
    payload = torch.load(checkpoint, weights_only=True)
    edit(payload)
    return seal(payload) if isinstance(payload, dict) and DIGEST_KEY in payload else payload


def _other_method_state(payload):
    other = registry.create_method("pix2pix", size=SIZE)
    payload["state"] = other.state_dict()


BAD_CHECKPOINTS = {
    "text": (lambda p, c: p.write_text("epoch 3, loss 0.2\n"), "is a text file (starting 'epoch 3"),
    "empty": (lambda p, c: p.write_bytes(b""), "is an empty file (0 bytes), not a PyTorch file"),
    "jpeg": (lambda p, c: Image.new("RGB", (4, 4)).save(p, "JPEG"), "is a JPEG image, not a PyTorch file"),
    "truncated": (lambda p, c: p.write_bytes(c.read_bytes()[: c.stat().st_size // 2]),
                  "is a truncated or damaged PyTorch file"),
    "other tool": (lambda p, c: torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, p),
                   "is a PyTorch file from another tool (a dict with keys 'state_dict', 'epoch'), not a colorbench"),
    "bare tensor": (lambda p, c: torch.save(torch.zeros(3), p), "is a PyTorch file holding Tensor"),
    "newer format": (lambda p, c: torch.save({"format": "colorbench-checkpoint-9"}, p),
                     "is in format 'colorbench-checkpoint-9', which this colorbench cannot read"),
    "missing size": (lambda p, c: torch.save(_edited(c, lambda d: d.pop("size")), p), "lacks size"),
    "size text": (lambda p, c: torch.save(_edited(c, lambda d: d.update(size="big")), p),
                  "size is str 'big', expected a positive whole number of pixels"),
    "size bool": (lambda p, c: torch.save(_edited(c, lambda d: d.update(size=True)), p), "size is bool True"),
    "method number": (lambda p, c: torch.save(_edited(c, lambda d: d.update(method=5)), p), "method is int 5"),
    "options list": (lambda p, c: torch.save(_edited(c, lambda d: d.update(options=[1])), p),
                     "options is list [1], expected a dict"),
    "unknown method": (lambda p, c: torch.save(_edited(c, lambda d: d.update(method="nope")), p),
                       "unknown method 'nope'"),
    "unknown option": (lambda p, c: torch.save(_edited(c, lambda d: d["options"].update(colour=1)), p),
                       "unknown option colour"),
    "bad option value": (lambda p, c: torch.save(_edited(c, lambda d: d["options"].update(lr=-1.0)), p),
                         "option lr must be > 0"),
    "no nets": (lambda p, c: torch.save(_edited(c, lambda d: d.update(state={})), p),
                "state is dict {}, expected a dict with the networks' weights under 'nets'"),
    "other weights": (lambda p, c: torch.save(_edited(c, _other_method_state), p),
                      "its weights do not match method 'baseline'"),
}


@pytest.mark.parametrize("kind", list(BAD_CHECKPOINTS))
def test_bad_checkpoints_explained_in_one_line(run_cli, checkpoint, tmp_path, kind):
    make, message = BAD_CHECKPOINTS[kind]
    path = tmp_path / "model.pt"
    make(path, checkpoint)
    with pytest.raises(BenchError) as caught:
        load_checkpoint(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text, text
    Image.fromarray(gradient(8, 8)).save(tmp_path / "a.png")
    code, _, err = run_cli("colorize", "--checkpoint", path, tmp_path / "a.png", "--out", tmp_path / "o")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_folder_or_missing_checkpoint(checkpoint, tmp_path):
    with pytest.raises(BenchError, match=f"is a folder; expected a colorbench checkpoint.*did you mean {checkpoint}"):
        load_checkpoint(checkpoint.parent)
    with pytest.raises(BenchError, match="is a folder.*no checkpoint.pt below it"):
        load_checkpoint(tmp_path)
    with pytest.raises(BenchError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


class _RunsCode:
    """Unpickling this calls exec(): what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def test_pickle_payload_is_refused_without_running(checkpoint, tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    torch.save(_edited(checkpoint, lambda d: d.update(extra=_RunsCode(marker))), path)
    with pytest.raises(BenchError, match=r"holds Python objects.*refused without running them \(weights_only=True"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: a full unpickle does run it
    assert marker.read_text() == "ran"


def test_checkpoint_round_trip_keeps_metadata(checkpoint):
    method, meta = load_checkpoint(checkpoint)
    assert meta["format"] == FORMAT and meta["size"] == SIZE and meta["method"] == "baseline"
    assert meta["steps"] == 0 and meta["dataset"] == "sample" and "colorbench_version" in meta
    assert method.size == SIZE
