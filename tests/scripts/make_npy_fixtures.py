#!/usr/bin/python3
"""Write the .npy fixtures used by tests/unit/test_npy.c.

Run with the system interpreter that has NumPy (tested with NumPy 1.24):

    /usr/bin/python3 tests/scripts/make_npy_fixtures.py

Four groups of files land in tests/fixtures/npy/:

* np_*.npy   written by np.save (format 1.0). test_npy.c reads each one, checks
             its values against the same formulas computed in C, then writes it
             back with gb_npy_write and compares the bytes: identical bytes mean
             NumPy reads what glassbox writes.
* v2_*.npy, v3_*.npy  written by np.lib.format.write_array(version=(2,0)/(3,0)).
* hand_*.npy header variants NumPy accepts but never writes itself (keys in
             another order, double quotes, no trailing comma, newlines inside
             the dict, Python 2 'L' suffixes, old 16-byte alignment). Each is
             checked here with np.load so the fixtures themselves are verified.
* bad_*.npy  well-formed files glassbox must refuse with GB_ERR_UNSUPPORTED
             (big-endian, int32, Fortran order, structured dtype).

The values are simple formulas so the C test recomputes them independently.
"""
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "npy")


def f32_2x3():
    # -0.5, -0.25, 0, 0.25, 0.5, 0.75
    return (np.arange(6, dtype=np.float32) * np.float32(0.25) - np.float32(0.5)).reshape(2, 3)


def f64_5():
    return np.array([1.0 / 3.0, -2.5, np.inf, np.nan, -0.0], dtype=np.float64)


def i64_scalar():
    return np.array(np.iinfo(np.int64).min, dtype=np.int64)


def i64_4():
    return np.array([0, -1, 2**40 + 7, np.iinfo(np.int64).max], dtype=np.int64)


def u8_2x1x3():
    return np.array([0, 1, 127, 128, 254, 255], dtype=np.uint8).reshape(2, 1, 3)


def f32_0x3():
    return np.zeros((0, 3), dtype=np.float32)


def f32_8d():
    # shape (1, 2, 1, 2, 1, 1, 2, 1): value i at flat index i
    return np.arange(8, dtype=np.float32).reshape(1, 2, 1, 2, 1, 1, 2, 1)


def u8_scalar():
    return np.array(200, dtype=np.uint8)


SAVED = {
    "np_f32_2x3.npy": f32_2x3,
    "np_f64_5.npy": f64_5,
    "np_i64_scalar.npy": i64_scalar,
    "np_i64_4.npy": i64_4,
    "np_u8_2x1x3.npy": u8_2x1x3,
    "np_u8_scalar.npy": u8_scalar,
    "np_f32_0x3.npy": f32_0x3,
    "np_f32_8d.npy": f32_8d,
}


def raw_npy(header, data, version=(1, 0), align=64):
    """A .npy image from a header dict text, padded like NumPy (to `align`)."""
    hb = header.encode("latin1")
    prefix = 8 + (2 if version[0] == 1 else 4)
    total = prefix + len(hb) + 1
    pad = (-total) % align
    hb = hb + b" " * pad + b"\n"
    fmt = "<H" if version[0] == 1 else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(hb)) + hb + data


def write(name, blob):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(blob)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, make in SAVED.items():
        np.save(os.path.join(OUT, name), make())

    for version in ((2, 0), (3, 0)):
        with open(os.path.join(OUT, "v%d_f32_2x3.npy" % version[0]), "wb") as f:
            np.lib.format.write_array(f, f32_2x3(), version=version)

    a = f32_2x3().tobytes()
    hand = {
        # keys reordered, double quotes, no trailing comma, no space after ':'
        "hand_order.npy": raw_npy('{"shape":(2,3),"fortran_order":False,"descr":"<f4"}', a),
        # newlines, tabs and a trailing comma inside the shape tuple
        "hand_spaces.npy": raw_npy("{\n\t'descr' : '<f4' ,\n 'fortran_order' : False ,"
                                   "\n 'shape' : ( 2 , 3 , ) ,\n}", a),
        # Python 2 NumPy wrote longs; old NumPy aligned to 16 bytes
        "hand_py2.npy": raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
                                a, align=16),
        # '<u1' as well as NumPy's own '|u1'
        "hand_u1.npy": raw_npy("{'descr': '<u1', 'fortran_order': False, 'shape': (2, 1, 3), }",
                               u8_2x1x3().tobytes()),
        # leading spaces before the dict (ast.literal_eval strips them)
        "hand_lead.npy": raw_npy("  {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", a),
    }
    for name, blob in hand.items():
        write(name, blob)
        got = np.load(os.path.join(OUT, name))
        want = u8_2x1x3() if "u1" in name else f32_2x3()
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got, want), name

    np.save(os.path.join(OUT, "bad_f32_be.npy"), f32_2x3().astype(">f4"))
    np.save(os.path.join(OUT, "bad_i32.npy"), np.arange(3, dtype="<i4"))
    np.save(os.path.join(OUT, "bad_fortran.npy"), np.asfortranarray(f32_2x3()))
    np.save(os.path.join(OUT, "bad_struct.npy"),
            np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8")]))
    with open(os.path.join(OUT, "bad_fortran.npy"), "rb") as f:
        assert b"'fortran_order': True" in f.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
