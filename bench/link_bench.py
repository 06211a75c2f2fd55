"""Link efficiency: frames/s achieved against the bound set by the line and Invoke(), W = 1 and W > 1.

For 1250-byte int8 frames streamed with RUN to the virtual EVB paced like an 8N1 UART:
  bound      = 1 / (bytes on the wire each way x 10 bits / baud  +  median invoke time)
  achieved   = frames/s over the run
  efficiency = achieved / bound
on three paths: the paced pty itself ("paced"), and the same pty behind a loopback RFC 2217 hop
served by ser2net exactly as labgrid's exporter starts it ("rfc2217+nagle": Nagle left on, as
labgrid runs it) and with TCP_NODELAY on ser2net's socket ("rfc2217+nodelay"); each with one RUN
per round trip (W = 1) and with the device's credits (W = rx_credits from HELLO) in flight.

Usage: ``python bench/link_bench.py [--export-dir job/demo/export] [--frames 30] [--paths paced,...]``
(without --export-dir it exports the demo into a temporary folder first; the RFC 2217 paths need
ser2net: ``apt-get install ser2net``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = ("paced", "rfc2217+nagle", "rfc2217+nodelay")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ser2net(pty: str, baud: int, nodelay: bool) -> Iterator[str]:
    """ser2net serving ``pty`` as RFC 2217 on a loopback port, as labgrid's exporter starts it."""
    binary = shutil.which("ser2net") or "/usr/sbin/ser2net"
    port = _free_port()
    tcp = "tcp(nodelay=true)" if nodelay else "tcp"
    cmd = [
        binary,
        "-d",
        "-n",
        "-Y",
        f"connection: &con01#  accepter: telnet(rfc2217,mode=server),{tcp},127.0.0.1,{port}",
        "-Y",
        f"  connector: serialdev(nouucplock=true),{pty},{baud}n81,local",
        "-Y",
        "  options:",
        "-Y",
        "    max-connections: 10",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"ser2net exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise SystemExit("ser2net did not listen within 5 s")
        yield f"rfc2217://127.0.0.1:{port}?ign_set_control"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path)
    parser.add_argument("--frames", type=int, default=30, help="frames per run at 115200 (x8 at 921600)")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--bauds", default="115200,921600")
    args = parser.parse_args()

    import numpy as np

    from hkdeploy.link import protocol as p
    from hkdeploy.link.client import DeviceClient, Timeouts
    from hkdeploy.link.framing import wire_size
    from hkdeploy.link.pipeline import run_many, window_for
    from hkdeploy.platforms.host import build_virtual_evb
    from hkdeploy.platforms.host_process import HostPort

    paths = [x for x in args.paths.split(",") if x]
    bad = set(paths) - set(PATHS)
    if bad:
        raise SystemExit(f"unknown path(s) {sorted(bad)}: use {', '.join(PATHS)}")
    if any(x.startswith("rfc2217") for x in paths) and not (
        shutil.which("ser2net") or Path("/usr/sbin/ser2net").exists()
    ):
        raise SystemExit("the RFC 2217 paths need ser2net: apt-get install ser2net (or --paths paced)")
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
        print(
            f"{'path':<16} {'baud':>7} {'W':>2} {'frames/s':>9} {'bound':>9} {'efficiency':>10} {'invoke':>9}"
        )
        for path in paths:
            for baud in (int(b) for b in args.bauds.split(",")):
                n = args.frames * (8 if baud > 200000 else 1)
                for windowed in (False, True):
                    with contextlib.ExitStack() as stack:
                        hp = stack.enter_context(HostPort(binary, "sim:bench", baud=baud))
                        url = hp.url
                        if path != "paced":
                            url = stack.enter_context(ser2net(hp.url, baud, nodelay=path.endswith("nodelay")))
                        dev = stack.enter_context(
                            DeviceClient(url, baud=baud, timeouts=Timeouts(packet=5.0, command=60.0))
                        )
                        dev.hello()
                        w = window_for(dev, frame_bytes) if windowed else 1
                        dev.run(frames[0].tobytes())  # warm-up
                        start = time.perf_counter()
                        results = list(
                            run_many(dev, (frames[i % len(frames)].tobytes() for i in range(n)), window=w)
                        )
                        elapsed = time.perf_counter() - start
                    invoke = statistics.median(r.cycles * 1e-9 for r in results)
                    achieved = n / elapsed
                    bound = 1.0 / ((req + rsp) * 10.0 / baud + invoke)
                    print(
                        f"{path:<16} {baud:>7} {w:>2} {achieved:>9.2f} {bound:>9.2f} "
                        f"{achieved / bound:>10.3f} {invoke * 1e3:>7.2f}ms",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
