"""Link throughput on the virtual EVB paced like a real UART, against the bound set by the line.

For 1250-byte int8 frames streamed with RUN over the host port paced at 115200 and 921600 baud (8N1):
  bound    = 1 / (bytes on the wire each way x 10 bits / baud  +  measured invoke time)
  achieved = frames/s over the run
and the protocol's byte overhead per frame (framing, header, CRC, RUN fields, COBS).

Usage: ``python bench/link_bench.py [--export-dir job/demo/export] [--frames 30]``
(without --export-dir it exports the demo into a temporary folder first).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path)
    parser.add_argument("--frames", type=int, default=30, help="frames per rate at 115200 (x8 at 921600)")
    args = parser.parse_args()

    import numpy as np

    from hkdeploy.link import protocol as p
    from hkdeploy.link.client import DeviceClient, Timeouts
    from hkdeploy.link.framing import wire_size
    from hkdeploy.platforms.host import build_virtual_evb
    from hkdeploy.platforms.host_process import HostPort

    with tempfile.TemporaryDirectory() as tmp:
        export_dir = args.export_dir
        if export_dir is None:
            exe = Path(sys.executable).parent / "hkdeploy"
            subprocess.run(
                [str(exe), "-q", "export", "-c", str(REPO / "configs" / "demo.json"), "--job-dir", tmp],
                check=True,
                timeout=1800,
            )
            export_dir = Path(tmp) / "export"
        binary = build_virtual_evb(export_dir, Path(tmp) / "evb")
        with np.load(export_dir / "test_data.npz") as d:
            frames = d["input_raw"]
        frame_bytes = frames[0].nbytes
        out_bytes = 4
        req = wire_size(p.RunRequest.SIZE + frame_bytes)
        rsp = wire_size(p.RunResponse.SIZE + out_bytes)
        overhead = req + rsp - frame_bytes - out_bytes
        print(
            f"frame {frame_bytes} B in, {out_bytes} B out; on the wire {req} B + {rsp} B; "
            f"protocol overhead {overhead} B/frame ({overhead / (frame_bytes + out_bytes):.1%})"
        )
        for baud, n in ((115200, args.frames), (921600, args.frames * 8)):
            with (
                HostPort(binary, "sim:bench", baud=baud) as hp,
                DeviceClient(hp.url, baud=baud, timeouts=Timeouts(packet=5.0, command=60.0)) as dev,
            ):
                dev.hello()
                dev.run(frames[0].tobytes())  # warm-up
                invoke_s = []
                start = time.perf_counter()
                for i in range(n):
                    invoke_s.append(dev.run(frames[i % len(frames)].tobytes()).cycles * 1e-9)
                elapsed = time.perf_counter() - start
            achieved = n / elapsed
            bound = 1.0 / ((req + rsp) * 10.0 / baud + statistics.median(invoke_s))
            print(
                f"{baud:>7} baud: {achieved:8.2f} frames/s achieved, bound {bound:8.2f} frames/s, "
                f"ratio {achieved / bound:.3f} (invoke {statistics.median(invoke_s) * 1e3:.2f} ms)"
            )


if __name__ == "__main__":
    main()
