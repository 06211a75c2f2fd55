"""The protocol spec and its generated ends (C header, Python module, docs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hkdeploy.link import protocol as p
from tools import gen_protocol as codegen


def test_generated_files_match_the_spec() -> None:
    for path, text in codegen.render_all().items():
        assert path.read_text() == text, f"{path} is stale: run python -m tools.gen_protocol"
        assert "\r\n" not in text and "20" + "26-" not in text


def test_spec_is_consistent() -> None:
    spec = codegen.load_spec()
    ids = [m["id"] for m in spec["messages"]]
    assert len(ids) == len(set(ids))
    codes = [s["code"] for s in spec["status"]]
    assert len(codes) == len(set(codes))
    for s in spec["status"][1:]:
        assert s["text"] and s["hint"], f"status {s['name']} needs a text and a hint"
    # engine statuses keep the numbers of firmware/engine/hk_engine.h
    header = (codegen.firmware_dir() / "engine" / "hk_engine.h").read_text()
    for name, code in (("ALLOCATE", 2), ("NOT_READY", 4), ("ARENA_TOO_BIG", 6)):
        assert f"HK_ENGINE_ERR_{name} = {code}" in header
        assert p.Status[f"ENGINE_{name}"] == code


def test_c_header_compiles_and_sizes_agree(tmp_path: Path) -> None:
    src = tmp_path / "sizes.c"
    src.write_text(
        '#include <stdio.h>\n#include "hk_protocol.h"\n'
        'int main(void){printf("%zu %zu %zu\\n", sizeof(hk_hello_rsp_t), sizeof(hk_wire_tensor_t),'
        " sizeof(hk_perf_rsp_t)); return 0;}\n"
    )
    inc = codegen.C_OUT.parent
    exe = tmp_path / "sizes"
    subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{inc}", str(src), "-o", str(exe)],
        check=True,
        timeout=60,
    )
    sizes = [
        int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    ]
    assert sizes == [p.HelloResponse.SIZE, p.WireTensor.SIZE, p.PerfResponse.SIZE]


def hello() -> p.HelloResponse:
    tensor = p.WireTensor(9, 3, 0, (1, 1250, 1, 0, 0, 0), 0.0625, -55, 1250)
    return p.HelloResponse(
        1,
        512,
        4,
        0,
        15904,
        12720,
        17184,
        192_000_000,
        bytes(range(32)),
        tensor,
        p.WireTensor(9, 2, 0, (1, 4, 0, 0, 0, 0), 0.00390625, -128, 4),
        "apollo4p_evb",
        "0123abc",
        1,
        12,
        3,
    )


def test_message_round_trips() -> None:
    h = hello()
    raw = h.pack()
    assert len(raw) == p.HelloResponse.SIZE and p.HelloResponse.unpack(raw) == h
    run = p.RunRequest(offset=0, data=bytes(range(256)) * 4)
    assert p.RunRequest.unpack(run.pack()) == run
    assert p.LogResponse.unpack(b"arena too small").text == "arena too small"
    with pytest.raises(ValueError, match="expected 4"):
        p.PerfRequest.unpack(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        p.HelloResponse.unpack(raw[:-1])
