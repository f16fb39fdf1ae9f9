"""How much a resumed `juststorage put` sends again (the issue's target: at most 15 %).

    .venv/bin/python scripts/measure_resume.py --mib 1024 --mode kill
    .venv/bin/python scripts/measure_resume.py --mib 1024 --mode cut

Starts a server on 127.0.0.1 (stopped at the end), writes a file of random bytes,
and runs `juststorage put` with its defaults (8 MiB parts, 4 in flight) through
a proxy that paces each connection (so the run can be stopped at 90 %) and counts
every byte sent to the server. At 90 % of the parts recorded in the state file,
`kill` sends the CLI SIGKILL; `cut` closes every connection and the listener (a
lost network: the CLI fails on its own). Then the same command runs again, with
nothing in between, and the bytes it sent are the answer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from juststorage.testing import BIN, clean_env, start

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sdk import proxy as proxy_module  # noqa: E402 (the tests' proxy)

MiB = 1024 * 1024
PART_BYTES = 8 * MiB  # the CLI's default for files under 80 GB


def _parts_recorded(state_dir: Path) -> int:
    try:
        (state_file,) = state_dir.glob("upload-*.json")
        return len(json.loads(state_file.read_text())["parts"])
    except (OSError, ValueError, KeyError):
        return 0


def _settled(proxy: proxy_module.CuttingProxy) -> int:
    """The bytes forwarded once nothing more arrives (a dead client's buffers drain)."""
    last = -1
    while last != proxy.bytes_up:
        last = proxy.bytes_up
        time.sleep(0.5)
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--mode", choices=["kill", "cut"], default="kill")
    parser.add_argument("--pace-mib", type=float, default=25.0, help="MiB/s per connection")
    options = parser.parse_args()
    # The tests bound a proxied connection to 3000 reads; a large file needs more.
    proxy_module._MAX_POLLS = 10**7
    tmp = Path(tempfile.mkdtemp(prefix="measure-resume-"))
    server = start(tmp / "server")
    try:
        source = tmp / "model.bin"
        with source.open("wb") as handle:
            for _ in range(options.mib):
                handle.write(os.urandom(MiB))
        size = source.stat().st_size
        parts = -(-size // PART_BYTES)
        state_dir = tmp / "config" / "transfers"
        proxy = proxy_module.CuttingProxy(
            server.port, 1 << 62, up_bytes_per_s=options.pace_mib * MiB
        ).__enter__()
        (tmp / "config").mkdir(parents=True, exist_ok=True)
        (tmp / "config" / "client.toml").touch()  # named, so it must exist (empty)
        env = clean_env(
            tmp / "unused",
            {
                "JUSTSTORAGE_URL": proxy.url,
                "JUSTSTORAGE_TOKEN": server.admin_key,
                "JUSTSTORAGE_CLIENT_CONFIG": str(tmp / "config" / "client.toml"),
            },
        )
        args = [str(BIN), "put", str(source), "acme/models/model.bin", "--json"]
        first = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while (recorded := _parts_recorded(state_dir)) < 0.9 * parts:
            if first.poll() is not None:
                raise SystemExit(f"the first put ended on its own (exit {first.returncode})")
            time.sleep(0.01)
        if options.mode == "kill":
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            sent_first = _settled(proxy)
            proxy.up_bytes_per_s = None
            before = sent_first
        else:
            proxy.__exit__(None, None, None)
            sent_first = proxy.bytes_up
            first.wait(timeout=300)
            proxy = proxy_module.CuttingProxy(server.port, 1 << 62).__enter__()
            env["JUSTSTORAGE_URL"] = proxy.url
            before = 0
        started = time.monotonic()
        again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
        took = time.monotonic() - started
        resent = proxy.bytes_up - before
        proxy.__exit__(None, None, None)
        if again.returncode != 0 or json.loads(again.stdout)["size_bytes"] != size:
            raise SystemExit(f"the resumed put failed: {again.stderr}")
        print(
            f"[{options.mode}] {options.mib} MiB, 8 MiB parts, 4 in flight: stopped with "
            f"{recorded}/{parts} parts recorded ({sent_first / size:.1%} of the file sent); "
            f"the resumed put sent {resent / MiB:.1f} MiB = {resent / size:.1%} of the file "
            f"and took {took:.1f} s"
        )
        return 0
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
