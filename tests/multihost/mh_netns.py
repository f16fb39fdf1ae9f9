"""Separate "hosts" on one machine: network namespaces on a bridge the test creates.

Every name carries a per-run id, so a leftover from a killed run never collides
with this one, and `Network.close()` removes exactly what this run created (and
nothing else), also after a failure. Addresses come from one private /24 that is
only ever configured *inside* these namespaces: the bridge itself has no address,
so the root namespace (and everything else on the machine or beyond) can neither
reach them nor be reached from them.

Code that talks to a host from the test process runs in a thread that entered the
client namespace with setns(2) (`in_namespace`): the namespace of a socket is the
one of the thread that creates it, and the test's main thread stays where it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

SUBNET_PREFIX = "10.231.0"  # /24; .1 is never used (no gateway: one flat segment)
PREFIX_LEN = 24
CLONE_NEWNET = 0x40000000
IP = shutil.which("ip") or "/usr/sbin/ip"


class NetnsUnavailable(RuntimeError):
    """This machine (or user) cannot create network namespaces."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [IP, *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def why_unavailable() -> str | None:
    """None when this process can make namespaces and veth pairs; else the reason."""
    if os.geteuid() != 0:
        return "the multi-host test needs root (network namespaces, veth pairs)"
    if not os.path.exists(IP):
        return "the multi-host test needs iproute2 (`ip`)"
    probe = f"jsprobe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    try:
        veth = _ip(
            "link", "add", probe, "type", "veth", "peer", "name", "eth0", "netns", probe,
            check=False,
        )  # fmt: skip
        if veth.returncode != 0:
            return f"cannot create a veth pair: {veth.stderr.strip()}"
        _ip("link", "del", probe, check=False)
    finally:
        _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Host:
    """One namespace with one interface (`eth0`) on the run's bridge."""

    name: str
    netns: str
    veth: str  # the bridge-side end, in the root namespace: cut the host with it
    address: str

    def command(self, *argv: str) -> list[str]:
        """`argv` to run inside this host's namespace."""
        return [IP, "netns", "exec", self.netns, *argv]

    def link_down(self) -> None:
        """Cut the host off the network, as a pulled cable: packets are dropped, no RST."""
        _ip("link", "set", self.veth, "down")

    def link_up(self) -> None:
        _ip("link", "set", self.veth, "up")


@dataclass
class Network:
    """A bridge and the hosts on it, all named `js<run id>…`; `close()` removes them."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    hosts: dict[str, Host] = field(default_factory=dict)
    _bridge: str | None = None
    _next_octet: int = 2

    @property
    def bridge(self) -> str:
        if self._bridge is None:
            name = f"jsb{self.run_id}"
            _ip("link", "add", name, "type", "bridge")
            self._bridge = name
            _ip("link", "set", name, "up")
        return self._bridge

    def add_host(self, name: str) -> Host:
        """A new namespace with `eth0` at the next free address, and loopback up."""
        assert name not in self.hosts, name
        index = len(self.hosts)
        octet = self._next_octet
        self._next_octet += 1
        host = Host(
            name=name,
            netns=f"js{self.run_id}-{name}",
            veth=f"jsv{self.run_id}{index:02d}",
            address=f"{SUBNET_PREFIX}.{octet}",
        )
        bridge = self.bridge
        _ip("netns", "add", host.netns)
        self.hosts[name] = host  # from here on close() removes it
        _ip(
            "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns
        )  # fmt: skip
        _ip("link", "set", host.veth, "master", bridge)
        _ip("link", "set", host.veth, "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/{PREFIX_LEN}", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        return host

    def close(self) -> None:
        """Remove every veth, namespace and the bridge this run made (errors ignored)."""
        for host in self.hosts.values():
            _ip("link", "del", host.veth, check=False)
            _ip("netns", "del", host.netns, check=False)
        self.hosts.clear()
        if self._bridge is not None:
            _ip("link", "del", self._bridge, check=False)
            self._bridge = None

    def leftovers(self) -> list[str]:
        """Links or namespaces of this run that still exist (should be none after close)."""
        links = _ip("-o", "link", "show", check=False).stdout.splitlines()
        spaces = _ip("netns", "list", check=False).stdout.splitlines()
        return [
            line.split(":")[1].strip().split("@")[0] for line in links if self.run_id in line
        ] + [line.split()[0] for line in spaces if self.run_id in line]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def enter_namespace(netns: str) -> None:
    """Move the calling *thread* into network namespace `netns` (setns(2))."""
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({netns}): {os.strerror(errno)}")
    finally:
        os.close(fd)


class NamespaceThreads:
    """A thread pool whose threads all live in one network namespace.

    Sockets they open (and threads they start) are in that namespace; the caller's
    threads are untouched.
    """

    def __init__(self, netns: str, workers: int) -> None:
        self.netns = netns
        self._pool = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix=f"netns-{netns}",
            initializer=enter_namespace,
            initargs=(netns,),
        )

    def run(self, fn: Callable[..., T], *args: object, timeout: float = 120.0) -> T:
        """`fn(*args)` on one of the namespace's threads; its result or exception."""
        return self._pool.submit(fn, *args).result(timeout=timeout)

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def network() -> Iterator[Network]:
    net = Network()
    try:
        yield net
    finally:
        net.close()


def current_thread_in(netns: str) -> bool:
    """True when the calling thread's network namespace is `netns` (for assertions)."""
    mine = os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net")
    theirs = os.stat(f"/run/netns/{netns}")
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)
