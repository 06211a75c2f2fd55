"""The device link: wire protocol (generated from firmware/protocol/spec.yaml) and framing.

Nothing here imports TensorFlow.
"""

# The firmware's link core, relative to hkdeploy.paths.firmware_dir(): every build of the core (host
# port, tests, fuzz harness) takes its file list from here.
CORE_SOURCES: tuple[str, ...] = (
    "core/hk_link.c",
    "core/hk_dispatch.c",
    "core/hk_cobs.c",
    "core/hk_crc32.c",
)
