"""The board firmware's build without (and, opt-in, with) the neuralSPOT SDK.

CI has no neuralSPOT tree, so the real build is checked by hand (docs/firmware.md). Here a fake tree
(a test double: its Makefile records the variables it is given and writes the outputs where
neuralSPOT would) and a fake ``arm-none-eabi-size`` check the exact invocation of neuralSPOT's make,
where the binaries are picked up, the errors for missing inputs, and ``make -n firmware`` at the
repository root (the golden command line).

Opt-in, on a machine with the SDK: ``NEURALSPOT_ROOT=/path/to/neuralSPOT`` compiles the TFLM engine
against the SDK's TFLM headers (host g++, and arm-none-eabi-g++ for Cortex-M4F and Cortex-M55 when
installed); ``HK_FW_TEST_PLATFORM=apollo3p_evb`` (plus ``HK_FW_TEST_AS_VERSION``) also runs the real
``make firmware`` with the demo export.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "firmware" / "platform" / "neuralspot"
ENGINE = REPO / "firmware" / "engine" / "hk_engine_tflm.cc"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _env() -> dict[str, str]:
    """The environment without the user's SDK settings (the tests pass what they mean)."""
    env = dict(os.environ)
    for name in ("NEURALSPOT_ROOT", "PLATFORM", "AS_VERSION", "HK_LINK", "HK_BUILD_ID", "TOOLCHAIN_DIR"):
        env.pop(name, None)
    return env


def _make(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(APP / "Makefile"), *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _top_make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    for name in ("model_buffer.h", "model_ops.h", "model_config.h"):
        (d / name).write_text(f"/* {name} */\n")
    return d


@pytest.fixture
def toolchain(tmp_path: Path) -> Path:
    """A test double of the Arm toolchain folder: arm-none-eabi-size prints a fixed table."""
    d = tmp_path / "toolchain"
    d.mkdir()
    size = d / "arm-none-eabi-size"
    size.write_text(
        '#!/bin/sh\necho "   text	   data	    bss	filename"\necho "   1000	   20	   300	$1"\n'
    )
    size.chmod(0o755)
    return d


@pytest.fixture
def fake_sdk(tmp_path: Path) -> Path:
    root = tmp_path / "neuralSPOT"
    (root / "make").mkdir(parents=True)
    (root / "make" / "neuralspot_config.mk").write_text("# fake\n")
    # records its variables; writes the binaries at neuralSPOT's BINDIR/<ADPATH>/<EXAMPLE>/
    (root / "Makefile").write_text(
        "all:\n"
        "\t@echo 'PLATFORM=$(PLATFORM) AS_VERSION=$(AS_VERSION) AUTODEPLOY=$(AUTODEPLOY) ADPATH=$(ADPATH) "
        "EXAMPLE=$(EXAMPLE) HK_EXPORT_DIR=$(HK_EXPORT_DIR) HK_BOARD_NAME=$(HK_BOARD_NAME) "
        "HK_BUILD_ID=$(HK_BUILD_ID) HK_LINK=$(HK_LINK) HK_CPU_HZ=$(HK_CPU_HZ)' > vars.txt\n"
        "\t@mkdir -p build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)\n"
        "\t@printf axf > build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)/hkdeploy_fw.axf\n"
        "\t@printf bin > build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)/hkdeploy_fw.bin\n"
    )
    return root


def test_invokes_neuralspot_make_with_the_app_and_collects_the_binaries(
    fake_sdk: Path, export_dir: Path, toolchain: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fw"
    res = _make(
        f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo4p_evb", "AS_VERSION=R4.4.1", f"EXPORT_DIR={export_dir}",
        f"FW_BUILD_DIR={out}", "HK_BUILD_ID=hk-123", "HK_BOARD_NAME=apollo4p_evb", "HK_CPU_HZ=192000000",
        f"TOOLCHAIN_DIR={toolchain}",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (fake_sdk / "vars.txt").read_text().split() == [
        "PLATFORM=apollo4p_evb", "AS_VERSION=R4.4.1", "AUTODEPLOY=1", f"ADPATH={APP.parent}", "EXAMPLE=neuralspot",
        f"HK_EXPORT_DIR={export_dir}", "HK_BOARD_NAME=apollo4p_evb", "HK_BUILD_ID=hk-123", "HK_LINK=usb",
        "HK_CPU_HZ=192000000",
    ]  # fmt: skip
    assert (out / "hkdeploy_fw.axf").read_text() == "axf" and (out / "hkdeploy_fw.bin").read_text() == "bin"
    assert f"   1000	   20	   300	{out}/hkdeploy_fw.axf" in res.stdout  # arm-none-eabi-size's table
    assert f"firmware: {out}/hkdeploy_fw.bin" in res.stdout


@pytest.mark.parametrize(
    ("platform", "cpu_hz"),
    [("apollo3p_evb", 96000000), ("apollo4l_evb", 192000000)],  # Apollo4 Lite: no USB HAL, USB_PRESENT=0
)
def test_parts_without_usb_default_to_the_uart_and_refuse_usb(
    fake_sdk: Path, export_dir: Path, toolchain: Path, tmp_path: Path, platform: str, cpu_hz: int
) -> None:
    common = [f"NEURALSPOT_ROOT={fake_sdk}", f"PLATFORM={platform}", f"EXPORT_DIR={export_dir}",
              f"FW_BUILD_DIR={tmp_path / 'fw'}", f"TOOLCHAIN_DIR={toolchain}"]  # fmt: skip
    res = _make(*common)
    assert res.returncode == 0, res.stderr
    assert {"HK_LINK=uart", f"HK_CPU_HZ={cpu_hz}"} <= set((fake_sdk / "vars.txt").read_text().split())
    res = _make(*common, "HK_LINK=usb")
    assert res.returncode != 0
    assert f"{platform} has no USB device port. Hint: HK_LINK=uart" in res.stderr
    res = _make(*common, "HK_LINK=spi")
    assert res.returncode != 0 and "HK_LINK=spi is not a link. Hint: HK_LINK=usb" in res.stderr


def test_objects_of_an_earlier_build_are_removed_first(
    fake_sdk: Path, export_dir: Path, toolchain: Path, tmp_path: Path
) -> None:
    """-D/-I flags (build id, link, export folder) are not in neuralSPOT's dependency files."""
    fw_root = str(APP.parents[1]).lstrip("/")
    stale = [
        fake_sdk / "build" / "apollo4p_evb" / "arm-none-eabi" / fw_root / "engine" / "hk_engine_tflm.o",
        fake_sdk / "build" / "apollo4p_evb" / "arm-none-eabi" / fw_root / "platform" / "neuralspot" / "src" / "hk_main.o",
    ]  # fmt: skip
    other_platform = fake_sdk / "build" / "apollo3p_evb" / "arm-none-eabi" / fw_root / "core" / "hk_link.o"
    sdk_lib = fake_sdk / "build" / "apollo4p_evb" / "arm-none-eabi" / "neuralspot" / "ns-core" / "ns-core.a"
    for f in [*stale, other_platform, sdk_lib]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("old")
    res = _make(f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo4p_evb", f"EXPORT_DIR={export_dir}",
                f"FW_BUILD_DIR={tmp_path / 'fw'}", f"TOOLCHAIN_DIR={toolchain}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert not any(f.exists() for f in stale)
    assert other_platform.exists() and sdk_lib.exists()


def test_binaries_of_another_platform_are_not_taken(fake_sdk: Path, export_dir: Path, tmp_path: Path) -> None:
    other = fake_sdk / "build" / "apollo3p_evb" / "arm-none-eabi" / str(APP).lstrip("/")
    other.mkdir(parents=True)
    (other / "hkdeploy_fw.axf").write_text("wrong")
    broken = fake_sdk / "Makefile"
    broken.write_text("all:\n\t@true\n")  # a build that produced nothing for apollo4p_evb
    res = _make(f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo4p_evb", f"EXPORT_DIR={export_dir}",
                f"FW_BUILD_DIR={tmp_path / 'fw'}")  # fmt: skip
    assert res.returncode != 0 and "hkdeploy_fw.axf not found under" in res.stderr
    assert not (tmp_path / "fw" / "hkdeploy_fw.axf").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["PLATFORM=apollo4p_evb"],
            "NEURALSPOT_ROOT is not set. Hint: git clone https://github.com/AmbiqAI/neuralSPOT",
        ),
        (["NEURALSPOT_ROOT=/nonexistent", "PLATFORM=apollo4p_evb"], "/nonexistent is not a neuralSPOT tree"),
        (["NEURALSPOT_ROOT={sdk}"], "PLATFORM is not set. Hint: PLATFORM=apollo4p_evb"),
        (
            ["NEURALSPOT_ROOT={sdk}", "PLATFORM=apollo4p_evb", "EXPORT_DIR=/nonexistent"],
            "holds no model_config.h",
        ),
    ],
)
def test_missing_inputs_are_named_with_a_hint(fake_sdk: Path, args: list[str], message: str) -> None:
    res = _make(*[a.format(sdk=fake_sdk) for a in args])
    assert res.returncode != 0 and message in res.stderr
    assert not (fake_sdk / "vars.txt").exists()


def test_top_level_make_firmware_forwards_to_the_app(
    fake_sdk: Path, export_dir: Path, toolchain: Path, tmp_path: Path
) -> None:
    res = _top_make("firmware", f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo3p_evb", "AS_VERSION=R3.1.1",
                    "HK_LINK=uart", f"EXPORT_DIR={export_dir}", f"FW_BUILD_DIR={tmp_path / 'fw'}",
                    f"TOOLCHAIN_DIR={toolchain}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    recorded = (fake_sdk / "vars.txt").read_text().split()
    assert "HK_LINK=uart" in recorded
    build_id = next(v for v in recorded if v.startswith("HK_BUILD_ID="))
    assert build_id.startswith("HK_BUILD_ID=git-")  # the checkout's commit, never a timestamp
    assert (tmp_path / "fw" / "hkdeploy_fw.bin").is_file()


def test_make_n_firmware_without_sdk_fails_with_the_hint() -> None:
    res = _top_make("-n", "firmware", "PLATFORM=apollo4p_evb")
    assert res.returncode != 0
    assert "NEURALSPOT_ROOT is not set. Hint: git clone https://github.com/AmbiqAI/neuralSPOT" in res.stderr


def test_make_n_firmware_golden_command_line(fake_sdk: Path) -> None:
    """`make -n` prints (and runs nothing of) the chain down to neuralSPOT's make; the defaults."""
    res = _top_make(
        "-n", "firmware", f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo4p_evb", "HK_BUILD_ID=b1"
    )
    assert res.returncode == 0, res.stderr
    export = REPO / "job" / "demo" / "export"
    fw_build = REPO / "build" / "firmware" / "apollo4p_evb"
    lines = [" ".join(line.split()) for line in res.stdout.replace("\\\n", " ").splitlines()]
    assert (
        f"make -f firmware/platform/neuralspot/Makefile NEURALSPOT_ROOT={fake_sdk} PLATFORM=apollo4p_evb "
        f"EXPORT_DIR={export} FW_BUILD_DIR={fw_build} HK_BUILD_ID=b1"
    ) in lines
    assert (
        f"make -C {fake_sdk} PLATFORM=apollo4p_evb AUTODEPLOY=1 ADPATH={APP.parent} EXAMPLE=neuralspot "
        f"HK_EXPORT_DIR={export} HK_BOARD_NAME=apollo4p_evb HK_BUILD_ID=b1 HK_LINK=usb HK_CPU_HZ=192000000"
    ) in lines
    assert f"arm-none-eabi-size {fw_build}/hkdeploy_fw.axf" in lines
    assert not (fake_sdk / "vars.txt").exists()  # -n: the fake SDK's recipe was only printed


# --- opt-in: the real SDK -------------------------------------------------------------------------

_SDK = os.environ.get("NEURALSPOT_ROOT", "")
_needs_sdk = pytest.mark.skipif(
    not _SDK or not Path(_SDK, "extern", "tensorflow").is_dir(),
    reason="needs TFLM headers (the pip tflite-micro package ships none): set NEURALSPOT_ROOT to a neuralSPOT "
    "checkout (extern/tensorflow/<TF_VERSION>)",
)

_MODEL_HEADERS = {
    "model_buffer.h": "#define HK_MODEL_DATA g_m\n#define HK_MODEL_LEN g_m_len\n"
    "alignas(16) const unsigned char g_m[] = {0};\nconst unsigned int g_m_len = 1;\n",
    "model_config.h": "#define HK_MODEL_ARENA_SIZE 1024u\n#define HK_MODEL_INPUT_BYTES 4u\n"
    "#define HK_MODEL_OUTPUT_BYTES 4u\n#define HK_MODEL_SHA256_BYTES {0}\n",
    "model_ops.h": '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
    "#define HK_MODEL_OP_COUNT 1\ntypedef tflite::MicroMutableOpResolver<HK_MODEL_OP_COUNT> HkModelOpResolver;\n"
    "static inline TfLiteStatus hk_model_register_ops(HkModelOpResolver &r) { return r.AddSoftmax(); }\n",
}


def _tflm_includes(sdk: Path) -> list[str]:
    versions = sorted(
        p for p in (sdk / "extern" / "tensorflow").glob("helia_rt_*") if (p / "tensorflow").is_dir()
    )
    root = versions[-1] if versions else sdk / "extern" / "tensorflow" / "tflm_nov_25"
    return [
        a
        for d in ("", "third_party", "third_party/flatbuffers/include", "third_party/gemmlowp")
        for a in ("-isystem", str(root / d))
    ]


@_needs_sdk
@pytest.mark.parametrize(
    "target",
    [
        ["g++"],
        ["arm-none-eabi-g++", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
        ["arm-none-eabi-g++", "-mcpu=cortex-m55", "-mfloat-abi=hard"],
    ],
    ids=["host", "cortex-m4f", "cortex-m55"],
)
def test_engine_compiles_warning_free_against_the_sdk_tflm_headers(target: list[str], tmp_path: Path) -> None:
    if shutil.which(target[0]) is None:
        pytest.skip(f"{target[0]} is not installed")
    for name, text in _MODEL_HEADERS.items():
        (tmp_path / name).write_text(text)
    argv = [*target, "-std=c++17", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Wshadow", "-Wundef",
            "-Werror", *_tflm_includes(Path(_SDK)), f"-I{tmp_path}", "-c", str(ENGINE), "-o", str(tmp_path / "e.o")]  # fmt: skip
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr


@_needs_sdk
@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("HK_FW_TEST_PLATFORM") or shutil.which("arm-none-eabi-gcc") is None,
    reason="the real board build runs only with HK_FW_TEST_PLATFORM=<platform> and arm-none-eabi-gcc on PATH",
)
def test_real_make_firmware(tmp_path: Path) -> None:
    export = REPO / "job" / "demo" / "export"
    if not (export / "model_config.h").is_file():
        pytest.skip("no demo export: run `make demo` first")
    platform = os.environ["HK_FW_TEST_PLATFORM"]
    args = ["firmware", f"NEURALSPOT_ROOT={_SDK}", f"PLATFORM={platform}", f"FW_BUILD_DIR={tmp_path}"]
    if os.environ.get("HK_FW_TEST_AS_VERSION"):
        args.append(f"AS_VERSION={os.environ['HK_FW_TEST_AS_VERSION']}")
    res = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=_env(), capture_output=True,
                         text=True, timeout=1800, check=False)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (tmp_path / "hkdeploy_fw.axf").is_file() and (tmp_path / "hkdeploy_fw.bin").stat().st_size > 0
    assert "text" in res.stdout and "bss" in res.stdout
