#!/usr/bin/python3
"""Write the image fixtures of tests/unit/test_image.c and test_preprocess.c.

Run with Debian's interpreter (numpy, torch 1.13, torchvision 0.14, PIL 9.4):

    /usr/bin/python3 tests/scripts/make_image_fixtures.py

Everything lands in tests/fixtures/images/ (about 60 KB), plus a seed corpus in
tests/fuzz/corpus/image/. The references are independent of glassbox. PIL
writes and decodes the images; torch and torchvision compute the tensors.

colors.png.L.pixels.npy: PIL's convert('L') of colors.png (64x64 random colors).
decode_cases.txt: lines "FILE CHANNELS TOLERANCE". gb_image_load(FILE) must
    give FILE.pixels.npy, a uint8 (H, W, CHANNELS) array, within TOLERANCE
    levels. The pixels come from PIL, except for:
    * 16-bit PNGs: numpy's v >> 8, the rule glassbox promises (stb's).
      PIL's own 16 -> 8 conversion clips instead.
    * palette PNGs: PIL's convert('RGB'), or convert('RGBA') when the PNG has
      tRNS.
    * JPEGs: PIL uses libjpeg and stb_image has its own IDCT and chroma
      upsampling, so they differ by a few levels. The tolerance is 4 for the
      maximum, and the test also bounds the mean.
bad_cases.txt: lines "FILE STATUS". gb_image_load(FILE) must fail with STATUS
    (a gb_status name).
preproc_cases.txt: lines "CASE IMAGE[,IMAGE...]". CASE.json is a sidecar
    (the schema in include/glassbox/image.h) holding the settings. CASE.npy
    is the expected float32 tensor for the images as a batch. An IMAGE ending
    in .npy holds uint8 (H, W, C) pixels, which the test wraps as a gb_image.
    That lets the JPEG cases start from PIL's decode. The reference:
      1. color with PIL on the uint8 image: convert('L') or convert('RGB'),
         and [..., ::-1] for bgr;
      2. torchvision.transforms.functional.resize with antialias=False on a
         float64 (C, H, W) tensor, which calls
         torch.nn.functional.interpolate(mode='bilinear', align_corners=False):
         to [H, W] for "stretch"; to [S], then center_crop([H, W]), for
         "shorter";
      3. x / scale, then torchvision's normalize(mean, std), still in float64;
      4. cast to float32; permute to NHWC if asked.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "images"))
CORPUS = os.path.normpath(os.path.join(HERE, "..", "fuzz", "corpus", "image"))

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def path(name):
    return os.path.join(OUT, name)


# ---- small synthetic images ------------------------------------------------------

def pattern(h, w, c, seed):
    """Smooth gradients plus noise. Interpolation weights then matter, and
    JPEG still compresses the image reasonably."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for k in range(c):
        base = 255.0 * (0.5 + 0.5 * np.sin(0.7 * x / (k + 1) + 0.5 * y + k))
        planes.append(base + rng.normal(0, 25, (h, w)))
    return np.clip(np.stack(planes, -1), 0, 255).round().astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_raw(name, w, h, bit_depth, color_type, rows):
    """A minimal PNG writer (filter 0 on every row), for what PIL cannot
    write: 16-bit RGB, and headers with absurd sizes."""
    raw = b"".join(b"\x00" + r for r in rows)
    data = (b"\x89PNG\r\n\x1a\n"
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw, 9))
            + png_chunk(b"IEND", b""))
    with open(path(name), "wb") as f:
        f.write(data)


def save_pixels(name, arr):
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    assert arr.dtype == np.uint8 and arr.ndim == 3
    np.save(path(name + ".pixels.npy"), np.ascontiguousarray(arr))


def make_images():
    decode = []   # (file, channels, tolerance)
    rgb = pattern(13, 19, 3, 1)
    gray = pattern(11, 7, 1, 2)[:, :, 0]
    rgba = pattern(9, 12, 4, 3)
    la = pattern(8, 10, 2, 4)

    def add(name, pixels, tol=0):
        save_pixels(name, pixels)
        decode.append((name, np.asarray(pixels).reshape(*np.asarray(pixels).shape[:2], -1).shape[2], tol))

    Image.fromarray(rgb, "RGB").save(path("rgb.png"))
    add("rgb.png", np.asarray(Image.open(path("rgb.png"))))
    Image.fromarray(gray, "L").save(path("gray.png"))
    add("gray.png", np.asarray(Image.open(path("gray.png"))))
    Image.fromarray(rgba, "RGBA").save(path("rgba.png"))
    add("rgba.png", np.asarray(Image.open(path("rgba.png"))))
    Image.fromarray(la, "LA").save(path("la.png"))
    add("la.png", np.asarray(Image.open(path("la.png"))))

    # Palette without and with transparency (tRNS -> RGBA).
    pal = Image.fromarray(pattern(10, 9, 3, 5), "RGB").quantize(16)
    pal.save(path("pal.png"))
    add("pal.png", np.asarray(Image.open(path("pal.png")).convert("RGB")))
    pal.save(path("pal_trns.png"), transparency=3)
    im = Image.open(path("pal_trns.png"))
    assert "transparency" in im.info
    add("pal_trns.png", np.asarray(im.convert("RGBA")))

    # Gray with tRNS: the transparency is ignored (1 channel), as PIL's mode L.
    Image.fromarray(gray, "L").save(path("gray_trns.png"), transparency=int(gray[0, 0]))
    im = Image.open(path("gray_trns.png"))
    assert im.mode == "L" and "transparency" in im.info
    add("gray_trns.png", np.asarray(im))

    # 16-bit: the promise is the high byte.
    rng = np.random.default_rng(6)
    g16 = rng.integers(0, 65536, (6, 9), dtype=np.uint16)
    g16[0, :4] = [0, 255, 256, 65535]
    Image.fromarray(g16).save(path("gray16.png"))   # mode I;16
    back = np.asarray(Image.open(path("gray16.png")))
    assert back.dtype in (np.uint16, np.int32) and (back == g16).all()
    add("gray16.png", (g16 >> 8).astype(np.uint8))
    rgb16 = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    write_png_raw("rgb16.png", 7, 5, 16, 2, [r.astype(">u2").tobytes() for r in rgb16])
    add("rgb16.png", (rgb16 >> 8).astype(np.uint8))

    # JPEG (4:2:0, baseline and progressive), gray JPEG.
    jrgb = pattern(16, 20, 3, 7)
    Image.fromarray(jrgb).save(path("rgb.jpg"), quality=90)
    add("rgb.jpg", np.asarray(Image.open(path("rgb.jpg"))), 4)
    Image.fromarray(jrgb).save(path("progressive.jpg"), quality=90, progressive=True)
    add("progressive.jpg", np.asarray(Image.open(path("progressive.jpg"))), 4)
    Image.fromarray(pattern(12, 10, 1, 8)[:, :, 0], "L").save(path("gray.jpg"), quality=92)
    add("gray.jpg", np.asarray(Image.open(path("gray.jpg"))), 4)

    # BMP: 24-bit bottom-up (odd width: padded rows), the same top-down
    # (negative height, rows reversed), and an 8-bit palette (-> RGB).
    Image.fromarray(rgb).save(path("rgb.bmp"))
    add("rgb.bmp", np.asarray(Image.open(path("rgb.bmp"))))
    b = bytearray(open(path("rgb.bmp"), "rb").read())
    off, (w, h) = struct.unpack_from("<I", b, 10)[0], struct.unpack_from("<ii", b, 18)
    row = (w * 3 + 3) // 4 * 4
    pix = b[off:off + row * h]
    rows = [pix[i * row:(i + 1) * row] for i in range(h)]
    struct.pack_into("<i", b, 22, -h)
    b[off:off + row * h] = b"".join(reversed(rows))
    with open(path("rgb_topdown.bmp"), "wb") as f:
        f.write(bytes(b))
    assert (np.asarray(Image.open(path("rgb_topdown.bmp"))) == rgb).all()
    add("rgb_topdown.bmp", rgb)
    # 32-bit BI_RGB BMP (PIL's RGBA): stb reads the 4th byte as alpha and
    # returns 4 channels (an all-zero alpha would become 255); PIL reads the
    # same file as RGB. The RGB values agree.
    Image.fromarray(rgba, "RGBA").save(path("rgba.bmp"))
    assert (np.asarray(Image.open(path("rgba.bmp"))) == rgba[:, :, :3]).all()
    add("rgba.bmp", rgba)
    pal.save(path("pal8.bmp"))
    add("pal8.bmp", np.asarray(Image.open(path("pal8.bmp")).convert("RGB")))

    # PGM / PPM (binary, maxval 255), and a PGM with header comments.
    Image.fromarray(gray, "L").save(path("gray.pgm"))
    add("gray.pgm", np.asarray(Image.open(path("gray.pgm"))))
    Image.fromarray(rgb, "RGB").save(path("rgb.ppm"))
    add("rgb.ppm", np.asarray(Image.open(path("rgb.ppm"))))
    small = pattern(5, 7, 1, 9)[:, :, 0]
    with open(path("comments.pgm"), "wb") as f:
        f.write(b"P5\n# a comment\n7 # width\n5\n255\n" + small.tobytes())
    assert (np.asarray(Image.open(path("comments.pgm"))) == small).all()
    add("comments.pgm", small)

    # Luma: 4096 random colors and PIL's convert('L') of them (gb_image_convert).
    colors = np.random.default_rng(11).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(colors).save(path("colors.png"))
    add("colors.png", colors)
    save_pixels("colors.png.L", np.asarray(Image.fromarray(colors).convert("L")))

    with open(path("decode_cases.txt"), "w") as f:
        for name, c, tol in decode:
            f.write(f"{name} {c} {tol}\n")
    return {"rgb": rgb, "gray": gray}


def jpeg_segments(data):
    """{marker: [offset of the first byte after the length field, ...]}"""
    segs, p = {}, 2
    while p < len(data):
        assert data[p] == 0xFF
        m = data[p + 1]
        p += 2
        if m == 0xD9:
            break
        n = struct.unpack(">H", data[p:p + 2])[0]
        segs.setdefault(m, []).append(p + 2)
        p += n
        if m == 0xDA:   # skip entropy-coded data
            while not (data[p] == 0xFF and data[p + 1] not in (0x00, *range(0xD0, 0xD8))):
                p += 1
    return segs


def make_bad():
    bad = []
    with open(path("text.png"), "w") as f:
        f.write("this is not an image, whatever its name says\n")
    bad.append(("text.png", "GB_ERR_FORMAT"))
    with open(path("empty.png"), "wb") as f:
        pass
    bad.append(("empty.png", "GB_ERR_FORMAT"))
    Image.fromarray(pattern(4, 4, 3, 10)).save(path("tiny.gif"))
    bad.append(("tiny.gif", "GB_ERR_UNSUPPORTED"))
    g = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000
    with open(path("gray16.pgm"), "wb") as f:
        f.write(b"P5\n7 5\n65535\n" + g.astype(">u2").tobytes())
    bad.append(("gray16.pgm", "GB_ERR_UNSUPPORTED"))
    with open(path("gray15.pgm"), "wb") as f:
        f.write(b"P5\n7 5\n15\n" + (g % 16).astype(np.uint8).tobytes())
    bad.append(("gray15.pgm", "GB_ERR_UNSUPPORTED"))
    with open(path("ascii.pgm"), "w") as f:
        f.write("P2\n2 2\n255\n0 1\n2 3\n")
    bad.append(("ascii.pgm", "GB_ERR_UNSUPPORTED"))
    # An RLE8 BMP (compression 1): refused before stb sees it.
    b = bytearray(open(path("pal8.bmp"), "rb").read())
    struct.pack_into("<I", b, 30, 1)
    with open(path("rle.bmp"), "wb") as f:
        f.write(bytes(b))
    bad.append(("rle.bmp", "GB_ERR_UNSUPPORTED"))
    # Absurd sizes in otherwise valid headers.
    write_png_raw("huge.png", 40000, 40000, 8, 0, [b"\x00" * 4])
    bad.append(("huge.png", "GB_ERR_UNSUPPORTED"))
    write_png_raw("wide.png", 30000, 20000, 8, 6, [b"\x00" * 4])   # 2.4 GB of RGBA
    bad.append(("wide.png", "GB_ERR_UNSUPPORTED"))
    # A PNG whose IDAT holds too few pixels: stb's own error.
    write_png_raw("short_idat.png", 8, 8, 8, 0, [b"\x00" * 8] * 3)
    bad.append(("short_idat.png", "GB_ERR_FORMAT"))
    # JPEGs that stb_image 2.27 mishandles (image.c's jpeg_check refuses
    # them): a scan using an undefined Huffman table (stb reads
    # uninitialized memory and may abort on an assert), a Huffman table
    # with 4080 codes (stb overruns a 257-entry array), a component using an
    # undefined quantization table.
    jpg = open(path("rgb.jpg"), "rb").read()
    segs = jpeg_segments(jpg)
    b = bytearray(jpg)
    b[segs[0xDA][0] + 2] = 0x33          # scan component 1: DC/AC tables 3
    with open(path("jpeg_undef_huff.jpg"), "wb") as f:
        f.write(bytes(b))
    bad.append(("jpeg_undef_huff.jpg", "GB_ERR_FORMAT"))
    b = bytearray(jpg)
    b[segs[0xC4][0] + 1:segs[0xC4][0] + 17] = bytes([255] * 16)
    with open(path("jpeg_big_huff.jpg"), "wb") as f:
        f.write(bytes(b))
    bad.append(("jpeg_big_huff.jpg", "GB_ERR_FORMAT"))
    b = bytearray(jpg)
    b[segs[0xC0][0] + 8] = 2             # component 1 uses quantization table 2
    with open(path("jpeg_undef_dqt.jpg"), "wb") as f:
        f.write(bytes(b))
    bad.append(("jpeg_undef_dqt.jpg", "GB_ERR_FORMAT"))
    for name in ("jpeg_undef_huff.jpg", "jpeg_big_huff.jpg", "jpeg_undef_dqt.jpg"):
        try:   # libjpeg refuses them too
            Image.open(path(name)).load()
            raise SystemExit(f"PIL decoded {name}")
        except (OSError, SyntaxError):
            pass
    with open(path("bad_cases.txt"), "w") as f:
        for name, st in bad:
            f.write(f"{name} {st}\n")


# ---- preprocessing references ----------------------------------------------------------

def load_pixels(name):
    if name.endswith(".npy"):
        return np.load(path(name))
    return np.load(path(name + ".pixels.npy"))


def reference(pixels, inp):
    c = pixels.shape[2]
    img = Image.fromarray(pixels[:, :, 0] if c == 1 else pixels, {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c])
    color = inp["color"]
    if color == "gray":
        a = np.asarray(img.convert("L"))[:, :, None]
    else:
        a = np.asarray(img.convert("RGB"))
        if color == "bgr":
            a = a[:, :, ::-1]
    x = torch.from_numpy(np.array(a)).permute(2, 0, 1).double()   # (C, H, W)
    H, W = inp["height"], inp["width"]
    if inp.get("resize", "stretch") == "stretch":
        x = TF.resize(x, [H, W], interpolation=InterpolationMode.BILINEAR, antialias=False)
    else:
        s = inp.get("resize_shorter") or max(H, W)
        x = TF.resize(x, [s], interpolation=InterpolationMode.BILINEAR, antialias=False)
        x = TF.center_crop(x, [H, W])
    assert x.shape[1:] == (H, W)
    x = x / inp.get("scale", 255)
    x = TF.normalize(x, inp.get("mean", [0.0] * x.shape[0]), inp.get("std", [1.0] * x.shape[0]))
    x = x.float()
    if inp.get("layout", "NCHW") == "NHWC":
        x = x.permute(1, 2, 0)
    return x.contiguous().numpy()


def make_preproc():
    cases = [
        # name, images, input settings (the sidecar's "input" object)
        ("stretch_down_rgb", ["rgb.png"],
         dict(height=8, width=11, color="rgb", channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)),
        ("stretch_up_gray", ["rgb.png"],
         dict(height=20, width=31, color="gray", channels=1, mean=[0.5], std=[0.25])),
        ("shorter_bgr_nhwc", ["rgb.png"],   # resized 10x14, crop left round(2.5) = 2
         dict(layout="NHWC", height=9, width=9, color="bgr", channels=3, resize="shorter",
              resize_shorter=10, mean=[0.1, 0.2, 0.3], std=[0.9, 0.8, 0.7])),
        ("shorter_pad", ["gray.png"],       # resized 9x6, padded to 12x8
         dict(height=12, width=8, color="gray", channels=1, resize="shorter", resize_shorter=6,
              mean=[0.2], std=[0.5])),
        ("shorter_default_s", ["rgba.png"],  # S = max(7, 5): resized 7x9, alpha dropped
         dict(height=7, width=5, color="rgb", channels=3, resize="shorter")),
        ("shorter_half_even", ["gray.png"],  # resized 18x12: top round(2.5) = 2, left round(1.5) = 2
         dict(height=13, width=9, color="rgb", channels=3, resize="shorter", resize_shorter=12,
              mean=IMAGENET_MEAN, std=IMAGENET_STD)),
        ("la_gray", ["la.png"], dict(height=5, width=6, color="gray", channels=1)),
        ("identity_raw", ["rgb.png"],
         dict(height=13, width=19, color="rgb", channels=3, scale=1, mean=[0, 0, 0], std=[1, 1, 1])),
        ("jpeg_rgb", ["rgb.jpg.pixels.npy"],
         dict(height=10, width=12, color="rgb", channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)),
        ("pal_rgb", ["pal.png"], dict(height=6, width=6, color="rgb", channels=3, scale=127.5,
                                      mean=[1, 1, 1], std=[1, 1, 1])),
        ("gray16_gray", ["gray16.png"], dict(height=8, width=8, color="gray", channels=1)),
        ("rgba_to_gray", ["rgba.png"], dict(height=4, width=3, color="gray", channels=1)),
        ("batch_mixed", ["rgb.png", "gray.png", "rgba.png", "la.png"],
         dict(height=8, width=11, color="rgb", channels=3, resize="shorter", resize_shorter=9,
              mean=IMAGENET_MEAN, std=IMAGENET_STD)),
    ]
    lines = []
    for name, images, inp in cases:
        inp = dict(inp, name="input")
        sidecar = {"input": inp, "task": "classification", "note": "written by make_image_fixtures.py"}
        with open(path(name + ".json"), "w") as f:
            json.dump(sidecar, f, indent=1)
            f.write("\n")
        batch = np.stack([reference(load_pixels(im), inp) for im in images])
        np.save(path(name + ".npy"), batch.astype(np.float32))
        lines.append(f"{name} {','.join(images)}\n")
    with open(path("preproc_cases.txt"), "w") as f:
        f.writelines(lines)


def make_corpus():
    os.makedirs(CORPUS, exist_ok=True)
    for old in os.listdir(CORPUS):
        os.remove(os.path.join(CORPUS, old))
    for name in ["rgb.png", "gray.png", "la.png", "pal_trns.png", "rgb16.png", "rgb.jpg",
                 "progressive.jpg", "gray.jpg", "rgb.bmp", "rgb_topdown.bmp", "pal8.bmp", "gray.pgm",
                 "rgb.ppm", "comments.pgm"]:
        data = open(path(name), "rb").read()
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    make_images()
    make_bad()
    make_preproc()
    make_corpus()
    total = sum(os.path.getsize(path(n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files ({total} bytes) to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
