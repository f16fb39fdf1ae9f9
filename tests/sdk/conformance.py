"""The Python interpreter of `sdks/conformance/scenario.json` (format in its README).

A `Driver` runs one call with the sync `Client` or the `AsyncClient`; `run_step`
checks the step's expectations against what the call did.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import juststorage_client as js

SCENARIO_PATH = Path(__file__).resolve().parents[2] / "sdks" / "conformance" / "scenario.json"
_CHUNK = 1024 * 1024
_VAR = re.compile(r"^\$\{(\w+)\.(\w+)\}$")


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCENARIO_PATH.read_text("utf-8"))
    assert data["format"] == "juststorage-conformance/1"
    return data


@dataclass
class Content:
    """Named bytes: literal text, or `pattern` (byte i is i % 251) of a size."""

    name: str
    size: int
    text: bytes | None = None
    _sha256: str | None = field(default=None, repr=False)

    @classmethod
    def from_spec(cls, name: str, spec: dict[str, Any]) -> Content:
        if "text" in spec:
            text = spec["text"].encode("utf-8")
            return cls(name, len(text), text)
        size = int(spec["pattern"])
        if spec.get("size_env") and os.environ.get(spec["size_env"]):
            size = int(os.environ[spec["size_env"]]) * 1024 * 1024
        return cls(name, size)

    def chunks(self, first: int = 0, last: int | None = None) -> Iterator[bytes]:
        end = self.size if last is None else min(self.size, last + 1)
        if self.text is not None:
            yield self.text[first:end]
            return
        block = bytes(range(251)) * (_CHUNK // 251 + 2)
        offset = first
        while offset < end:
            start = offset % 251
            n = min(_CHUNK, end - offset)
            yield block[start : start + n]
            offset += n

    def data(self, first: int = 0, last: int | None = None) -> bytes:
        return b"".join(self.chunks(first, last))

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            digest = hashlib.sha256()
            for chunk in self.chunks():
                digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def write(self, path: Path) -> Path:
        with path.open("wb") as handle:
            for chunk in self.chunks():
                handle.write(chunk)
        return path


def api_keys(credentials: dict[str, dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """`API_KEYS` for the server, and the token each credential name stands for."""
    entries = []
    tokens = {}
    for name, spec in credentials.items():
        token = f"conf{secrets.token_hex(24)}"
        tokens[name] = token
        if not spec.get("unregistered"):
            entries.append(f"{token}:{'|'.join(spec['tenants'])}:{' '.join(spec['scopes'])}")
    return ",".join(entries), tokens


class PeakRss:
    """Samples this process's resident memory every 5 ms while active."""

    def __init__(self) -> None:
        self.baseline = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, _rss_bytes())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 2**20


def _rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Outcome:
    result: Any = None
    error: js.ApiError | None = None
    retries: list[js.RetryEvent] = field(default_factory=list)
    elapsed_s: float = 0.0
    peak_rss_growth_mib: float = 0.0
    transport_error: js.TransportError | None = None
    resumed_bytes: list[int] = field(default_factory=list)


def substitute(value: Any, saved: dict[str, dict[str, Any]]) -> Any:
    if isinstance(value, str) and (match := _VAR.match(value)):
        return saved[match[1]][match[2]]
    if isinstance(value, dict):
        return {k: substitute(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, saved) for v in value]
    return value


def retry_policy(spec: dict[str, Any] | None, events: list[js.RetryEvent]) -> js.RetryPolicy:
    spec = spec or {}
    return js.RetryPolicy(
        max_attempts=int(spec.get("max_attempts", 4)),
        backoff_initial=0.05,
        backoff_max=0.5,
        max_resumes=int(spec.get("max_resumes", 5)),
        on_retry=events.append,
    )


class Driver:
    """One SDK flavour (sync or async) running scenario calls."""

    def __init__(self, flavour: str, tmp_path: Path) -> None:
        self.flavour = flavour
        self.tmp_path = tmp_path
        self._runner = asyncio.Runner() if flavour == "async" else None

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()

    def call(
        self,
        url: str,
        token: str | None,
        policy: js.RetryPolicy,
        step: dict[str, Any],
        contents: dict[str, Content],
        on_resume: Callable[[int], None],
    ) -> Any:
        if self._runner is None:
            with js.Client(url, token, retry=policy) as client:
                return _sync_call(client, step, contents, self.tmp_path, on_resume)

        async def run() -> Any:
            async with js.AsyncClient(url, token, retry=policy) as client:
                return await _async_call(client, step, contents, self.tmp_path, on_resume)

        return self._runner.run(run())


def _upload_file(step: dict[str, Any], content: Content, tmp: Path) -> tuple[Path, bool]:
    """The file to upload, and whether to remove it after the call.

    A step that names its `file` shares it with the scenario's other steps that
    name it (same path and modification time: the same upload, which resumes).
    """
    if "file" in step:
        path = tmp / f"file-{step['file']}"
        if not path.exists():
            content.write(path)
        return path, False
    return content.write(tmp / f"up-{secrets.token_hex(4)}"), True


def _session_call(step: dict[str, Any], contents: dict[str, Content]) -> tuple[str, list[Any]]:
    """The SDK method of a session call and its positional arguments."""
    call, args = step["call"], step.get("args", {})
    if call == "upload_part":
        first, last = step.get("range", [0, None])
        data = contents[step["content"]].data(first, last)
        return call, [args["upload_id"], args["part"], data]
    return call, [args["upload_id"]]


_SESSION_CALLS = {"upload_part", "get_upload", "complete_upload", "abort_upload"}


def _object_args(args: dict[str, Any]) -> dict[str, Any]:
    args = dict(args)
    if "range" in args:
        first, last = args.pop("range")
        args["byte_range"] = (first, last)
    return args


def _sync_call(
    client: js.Client,
    step: dict[str, Any],
    contents: dict[str, Content],
    tmp: Path,
    on_resume: Callable[[int], None],
) -> Any:
    call, args = step["call"], _object_args(step.get("args", {}))
    if call == "create_upload":
        return client.create_upload(**args).raw
    if call in _SESSION_CALLS:
        name, positional = _session_call(step, contents)
        answer = getattr(client, name)(*positional)
        return answer.to_json() if call == "complete_upload" else _session_json(answer)
    if call == "upload":
        content = contents[step["content"]]
        source = step["source"]
        if source == "bytes":
            return client.upload(content.data(), **args).to_json()
        if source == "file":
            path, remove = _upload_file(step, content, tmp)
            try:
                transfers = {"state_dir": tmp / "transfers", "on_resume": on_resume}
                return client.upload_file(path, **args, **transfers).to_json()
            finally:
                if remove:
                    path.unlink()
        return client.upload_stream(content.chunks(), **args).to_json()
    if call == "download":
        target = step["target"]
        if target == "memory":
            return client.download(**args)
        if target == "stream":
            with client.open(**args) as download:
                return _Hashed.of(download.iter_bytes())
        path = tmp / f"down-{secrets.token_hex(4)}"
        client.download_to_file(path, **args)
        return _Hashed.of_file(path)
    if call == "put_by_hash":
        content = contents[step["content"]]
        found = client.put_by_hash(sha256=content.sha256, size=content.size, **args)
        return None if found is None else found.to_json()
    if call == "head":
        return client.head(**args).to_json()
    if call == "delete":
        return client.delete(**args)
    if call == "list":
        return [item.to_json() for item in client.list(**args)]
    if call == "usage":
        return client.usage(**args).raw
    if call in ("health", "ready"):
        health = client.health() if call == "health" else client.ready()
        return {"ok": health.ok, "status": health.status, "checks": health.checks}
    raise AssertionError(f"unknown call {call!r}")


async def _async_call(
    client: js.AsyncClient,
    step: dict[str, Any],
    contents: dict[str, Content],
    tmp: Path,
    on_resume: Callable[[int], None],
) -> Any:
    call, args = step["call"], _object_args(step.get("args", {}))
    if call == "create_upload":
        return (await client.create_upload(**args)).raw
    if call in _SESSION_CALLS:
        name, positional = _session_call(step, contents)
        answer = await getattr(client, name)(*positional)
        return answer.to_json() if call == "complete_upload" else _session_json(answer)
    if call == "upload":
        content = contents[step["content"]]
        source = step["source"]
        if source == "bytes":
            return (await client.upload(content.data(), **args)).to_json()
        if source == "file":
            path, remove = _upload_file(step, content, tmp)
            try:
                transfers = {"state_dir": tmp / "transfers", "on_resume": on_resume}
                return (await client.upload_file(path, **args, **transfers)).to_json()
            finally:
                if remove:
                    path.unlink()

        async def chunks() -> Any:
            for chunk in content.chunks():
                yield chunk

        return (await client.upload_stream(chunks(), **args)).to_json()
    if call == "download":
        target = step["target"]
        if target == "memory":
            return await client.download(**args)
        if target == "stream":
            async with await client.open(**args) as download:
                hashed = _Hashed()
                async for chunk in download.iter_bytes():
                    hashed.update(chunk)
                return hashed
        path = tmp / f"down-{secrets.token_hex(4)}"
        await client.download_to_file(path, **args)
        return _Hashed.of_file(path)
    if call == "put_by_hash":
        content = contents[step["content"]]
        found = await client.put_by_hash(sha256=content.sha256, size=content.size, **args)
        return None if found is None else found.to_json()
    if call == "head":
        return (await client.head(**args)).to_json()
    if call == "delete":
        return await client.delete(**args)
    if call == "list":
        return [item.to_json() async for item in client.list(**args)]
    if call == "usage":
        return (await client.usage(**args)).raw
    if call in ("health", "ready"):
        health = await (client.health() if call == "health" else client.ready())
        return {"ok": health.ok, "status": health.status, "checks": health.checks}
    raise AssertionError(f"unknown call {call!r}")


def _session_json(answer: Any) -> Any:
    """A session call's answer in the SPEC's JSON shape (None for an abort)."""
    if isinstance(answer, js.UploadSession):
        return answer.raw
    return answer


class _Hashed:
    """A received body summarised as its size and SHA-256 (never held whole)."""

    def __init__(self) -> None:
        self.size = 0
        self._digest = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._digest.update(chunk)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    @classmethod
    def of(cls, chunks: Iterator[bytes]) -> _Hashed:
        hashed = cls()
        for chunk in chunks:
            hashed.update(chunk)
        return hashed

    @classmethod
    def of_file(cls, path: Path) -> _Hashed:
        with path.open("rb") as handle:
            hashed = cls.of(iter(lambda: handle.read(_CHUNK), b""))
        path.unlink()
        return hashed


def execute(
    driver: Driver,
    url: str,
    token: str | None,
    client_spec: dict[str, Any],
    step: dict[str, Any],
    contents: dict[str, Content],
) -> Outcome:
    outcome = Outcome()
    policy = retry_policy(client_spec.get("retry"), outcome.retries)
    started = time.monotonic()
    with PeakRss() as rss:
        try:
            outcome.result = driver.call(
                url, token, policy, step, contents, outcome.resumed_bytes.append
            )
        except js.ApiError as exc:
            outcome.error = exc
        except js.TransportError as exc:
            if not step.get("expect", {}).get("transport_error"):
                raise
            outcome.transport_error = exc
    outcome.elapsed_s = time.monotonic() - started
    outcome.peak_rss_growth_mib = rss.growth_mib
    return outcome


def check(
    step: dict[str, Any],
    outcome: Outcome,
    contents: dict[str, Content],
    saved: dict[str, dict[str, Any]],
) -> None:
    """Assert the step's `expect` block (no block: the call must succeed)."""
    expect = substitute(step.get("expect", {}), saved)
    where = f"{step['call']} {step.get('args')}"
    if expect.get("transport_error"):
        assert outcome.transport_error is not None, f"{where}: no transport error"
        return
    if "error" in expect:
        want = expect["error"]
        error = outcome.error
        assert error is not None, f"{where}: expected {want['code']}, got {outcome.result!r}"
        assert (error.code, error.status) == (want["code"], want["status"]), (where, error)
        assert isinstance(error, js.ApiError) and error.request_id, (where, "no request id")
        assert type(error).__name__ == want["code"], (where, type(error))
        if "retry_after_min" in want:
            assert error.retry_after is not None and error.retry_after >= want["retry_after_min"]
        return
    assert outcome.error is None, f"{where}: unexpected {outcome.error}"
    result = outcome.result
    if "not_found" in expect:
        assert result is None, f"{where}: expected the not-found result, got {result!r}"
    if "result" in expect:
        _assert_subset(expect["result"], result, where)
    if "object" in expect or "head" in expect:
        want = dict(expect.get("object") or expect["head"])
        content = contents[want.pop("content")]
        want["content_hash"] = f"sha256:{content.sha256}"
        want["size_bytes"] = content.size
        _assert_subset(want, result, where)
    if "content" in expect:
        content = contents[expect["content"]]
        first, last = expect.get("range", [0, None])
        if isinstance(result, bytes):
            assert result == content.data(first, last), f"{where}: wrong bytes"
        else:
            expected = _Hashed.of(content.chunks(first, last))
            assert (result.size, result.sha256) == (expected.size, expected.sha256), where
    if "keys" in expect:
        assert [i["key"] for i in result if "key" in i] == expect["keys"], (where, result)
    if "ids" in expect:
        assert [i["id"] for i in result if "id" in i] == expect["ids"], (where, result)
    if "common_prefixes" in expect:
        prefixes = [i["prefix"] for i in result if "prefix" in i]
        assert prefixes == expect["common_prefixes"], (where, result)
    if "entries" in expect:
        entries = [i.get("key", i.get("prefix")) for i in result]
        assert entries == expect["entries"], (where, result)
    if "retried" in expect:
        want = expect["retried"]
        matching = [e for e in outcome.retries if e.status == want["status"]]
        assert len(matching) >= want["min"], (where, outcome.retries)
    if "resumed" in expect:
        resumed = [e for e in outcome.retries if e.status is None and e.method == "GET"]
        assert len(resumed) >= expect["resumed"]["min"], (where, outcome.retries)
    if "resumed_upload" in expect:
        want = expect["resumed_upload"]["min_bytes"]
        assert sum(outcome.resumed_bytes) >= want, (where, outcome.resumed_bytes)
    if "parts" in expect:
        assert [p["part"] for p in result["parts"]] == expect["parts"], (where, result)
    if "elapsed_s" in expect:
        assert outcome.elapsed_s >= expect["elapsed_s"]["min"], (where, outcome.elapsed_s)
    if "peak_rss_growth_mib" in expect:
        limit = expect["peak_rss_growth_mib"]["max"]
        assert outcome.peak_rss_growth_mib <= limit, (where, outcome.peak_rss_growth_mib)
    if "save" in step:
        assert isinstance(result, dict), where
        saved[step["save"]] = result


def _assert_subset(want: Any, got: Any, where: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict), (where, got)
        for name, value in want.items():
            assert name in got, (where, name, got)
            _assert_subset(value, got[name], f"{where}.{name}")
    else:
        assert got == want, (where, want, got)
