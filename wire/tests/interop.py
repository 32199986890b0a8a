#!/usr/bin/env python3
"""Decodes WIRE.md's golden vectors with nothing but the spec, Python's
`msgpack` package and `zlib`, and compares them with the JSON beside each
vector (the same JSON the Rust tests check). Usage: interop.py WIRE.md

Exit status: 0 all vectors match, 1 a mismatch, 3 `msgpack` is missing."""

import json
import re
import struct
import sys
import zlib

try:
    import msgpack
except ImportError:
    print("interop.py: the Python package msgpack is not installed", file=sys.stderr)
    sys.exit(3)


def section(spec, title):
    """The text of the '### <title>' section, up to the next heading."""
    match = re.search(r"^###? " + re.escape(title) + r".*?$(.*?)(?=^#)", spec, re.M | re.S)
    if not match:
        raise SystemExit(f"WIRE.md has no section {title!r}")
    return match.group(1)


def code_table(text):
    """{code: name} from the rows '| code | `name` | ... |' of a table."""
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|", text, re.M)
    return {int(code): name for code, name in rows}


SPEC = open(sys.argv[1], encoding="utf-8").read()
STATUS = code_table(section(SPEC, "1.2 Status codes"))
CLASSES = code_table(section(SPEC, "1.3 Error classes"))


def uint(v, what, maximum=2**64 - 1):
    if type(v) is not int or not 0 <= v <= maximum:
        raise ValueError(f"{what}: {v!r} is not an integer in 0..{maximum}")
    return v


def opt_uint(v, what, maximum=2**64 - 1):
    return None if v is None else uint(v, what, maximum)


def record(arr, t):
    """Spec 1: an array of at least 8 elements; t is passed in already
    resolved (absolute or from a delta)."""
    if not isinstance(arr, list) or len(arr) < 8:
        raise ValueError(f"a record must be an array of >= 8 elements: {arr!r}")
    st = uint(arr[3], "st")
    if st not in STATUS:
        raise ValueError(f"unknown status {st}")
    code = opt_uint(arr[8], "ec") if len(arr) > 8 else None
    return {
        "t": uint(t, "t"),
        "rt": uint(arr[1], "rt"),
        "sc": opt_uint(arr[2], "sc", 65535),
        "st": STATUS[st],
        "dn": opt_uint(arr[4], "dn"),
        "cn": opt_uint(arr[5], "cn"),
        "tl": opt_uint(arr[6], "tl"),
        "ft": opt_uint(arr[7], "ft"),
        # Spec 1: an unknown class is kept as unknown (null).
        "error": CLASSES.get(code) if code is not None else None,
    }


def standalone(data):
    arr = msgpack.unpackb(data, raw=False)  # raises ExtraData on trailing bytes
    return record(arr, arr[0])


def frame(data, at):
    """Spec 2: returns (frame dict, offset after the frame)."""
    if data[at : at + 2] != b"\xc1\x53":
        raise ValueError(f"byte {at}: no frame marker")
    version, length = struct.unpack_from("<BI", data, at + 2)
    if version != 1 or length > 4 * 1024 * 1024:
        raise ValueError(f"byte {at}: version {version}, length {length}")
    end = at + 7 + length
    (stored,) = struct.unpack_from("<I", data, end)
    if zlib.crc32(data[at:end]) != stored:
        raise ValueError(f"byte {at}: checksum mismatch")
    body = msgpack.unpackb(data[at + 7 : end], raw=False)
    agent, session, seq, batches = body[:4]
    out = []
    for batch in batches:
        check, t, records = batch[:3]
        decoded = []
        for arr in records:
            t += arr[0]  # spec 2.3: delta from the previous t
            decoded.append(record(arr, t))
        out.append({"check": check, "records": decoded})
    value = {"agent": agent, "session": uint(session, "session"), "seq": uint(seq, "seq"),
             "batches": out}
    return value, end + 4


def file(data):
    if data[:7] != b"\x89SONDE\n" or data[7] != 1:
        raise ValueError("not a version 1 sonde wire file")
    at, frames = 8, []
    while at < len(data):
        value, at = frame(data, at)
        frames.append(value)
    return {"frames": frames}


def vectors():
    blocks = re.findall(r"^```(hex|json) vector=(\S+)\n(.*?)^```", SPEC, re.M | re.S)
    hexes = {n: bytes.fromhex("".join(b.split())) for kind, n, b in blocks if kind == "hex"}
    jsons = {n: json.loads(b) for kind, n, b in blocks if kind == "json"}
    return [(name, data, jsons[name]) for name, data in hexes.items()]


def main():
    failures = 0
    found = vectors()
    for name, data, expected in found:
        kind = name.split("-")[0]
        if kind == "record":
            got = standalone(data)
        elif kind == "frame":
            got, end = frame(data, 0)
            assert end == len(data), f"{name}: {len(data) - end} bytes after the frame"
        else:
            got = file(data)
        ok = got == expected
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name} ({len(data)} bytes)")
        if not ok:
            print(f"  expected {json.dumps(expected)}\n  got      {json.dumps(got)}")
    if len(found) != 5:
        print(f"FAIL expected 5 vectors, found {len(found)}")
        failures += 1
    sys.exit(1 if failures else 0)


main()
