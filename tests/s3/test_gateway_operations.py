"""The gateway as an operator sees it: request ids on every answer, the access log,
metrics, limits (EntityTooLarge, quota, SlowDown), a taken S3 port, TLS."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from juststorage.testing import BIN, Server, child_pids, clean_env, free_port, spawn
from s3.conftest import REGION, TENANT, Gateway, S3Key, make_s3_key, start_gateway
from support.private_ca import self_signed


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_every_answer_has_a_request_id(s3_gateway_sqlite: Gateway, bucket: str) -> None:
    gateway = s3_gateway_sqlite
    answers = [
        gateway.signed("PUT", f"/{bucket}/k", body=b"x"),
        gateway.signed("GET", f"/{bucket}/k"),
        gateway.signed("GET", f"/{bucket}/missing"),
        gateway.signed("HEAD", f"/{bucket}/missing"),
        gateway.signed("GET", f"/{bucket}?acl"),
        gateway.signed("PATCH", f"/{bucket}/k"),
    ]
    with httpx.Client(trust_env=False) as raw:
        answers.append(raw.get(f"{gateway.s3_url}/{bucket}/k"))  # anonymous
    wrong = S3Key(gateway.key.access_key, "not-the-secret", gateway.key.api_key)
    answers.append(gateway.signed("GET", f"/{bucket}/k", key=wrong))
    assert [a.status_code for a in answers] == [200, 200, 404, 404, 501, 405, 403, 403]
    for answer in answers:
        assert len(answer.headers["x-amz-request-id"]) == 16
        assert answer.headers["x-amz-id-2"]
    missing = answers[2]
    assert missing.headers["content-type"] == "application/xml"
    assert b"<Code>NoSuchKey</Code>" in missing.content
    request_id = missing.headers["x-amz-request-id"].encode()
    assert b"<RequestId>" + request_id + b"</RequestId>" in missing.content
    assert answers[3].content == b""  # HEAD: no body
    assert b"<Code>SignatureDoesNotMatch</Code>" in answers[-1].content
    assert b"<Code>AccessDenied</Code>" in answers[-2].content


def test_a_signed_sha256_that_does_not_match_stores_nothing(
    s3_gateway_sqlite: Gateway, bucket: str
) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    gateway = s3_gateway_sqlite
    url = f"{gateway.s3_url}/{bucket}/tampered"
    request = AWSRequest(method="PUT", url=url, data=b"the signed body")
    S3SigV4Auth(Credentials(gateway.key.access_key, gateway.key.secret_key), "s3", REGION).add_auth(
        request
    )
    with httpx.Client(trust_env=False) as raw:
        answer = raw.put(url, content=b"another body!!!", headers=dict(request.headers.items()))
    assert answer.status_code == 400
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in answer.content
    assert gateway.signed("HEAD", f"/{bucket}/tampered").status_code == 404


def test_access_log_and_metrics_count_s3_requests(s3_start: Any) -> None:
    gateway: Gateway = s3_start(JUSTSTORAGE_LOG_LEVEL="info", JUSTSTORAGE_LOG_FORMAT="json")
    bucket = f"{TENANT}.logged"
    gateway.signed("PUT", f"/{bucket}/k", body=b"logged")
    gateway.signed("GET", f"/{bucket}/k")
    gateway.signed("GET", f"/{bucket}/nope")
    metrics = httpx.get(f"{gateway.v1_url}/metrics", trust_env=False).text
    assert 'just_storage_s3_requests_total{operation="PutObject",status="200"} 1.0' in metrics
    assert 'just_storage_s3_requests_total{operation="GetObject",status="404"} 1.0' in metrics
    assert 'just_storage_requests_total{method="PUT",namespace="logged",status="200"}' in metrics
    deadline = time.monotonic() + 5
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(lines) < 3:
        lines = [
            json.loads(line)
            for line in gateway.server.log().splitlines()
            if line.startswith("{") and '"S3 ' in line
        ]
        time.sleep(0.1)
    routes = [(line.get("route"), line.get("status")) for line in lines]
    assert ("S3 PutObject", 200) in routes and ("S3 GetObject", 404) in routes
    put = next(line for line in lines if line.get("route") == "S3 PutObject")
    assert put["tenant"] == TENANT and put["namespace"] == "logged"
    assert put["principal"] == f"key:{gateway.key.access_key}"
    assert put["bytes_in"] >= len(b"logged")
    assert gateway.key.secret_key not in gateway.server.log()


def test_object_size_quota_and_rate_limits(s3_start: Any) -> None:
    gateway: Gateway = s3_start(
        JUSTSTORAGE_MAX_OBJECT_BYTES="10000", JUSTSTORAGE_QUOTA_BYTES="15000"
    )
    s3 = gateway.client()
    bucket = f"{TENANT}.limits"
    with pytest.raises(ClientError) as too_large:
        s3.put_object(Bucket=bucket, Key="big", Body=b"x" * 10001)
    assert _code(too_large) == ("EntityTooLarge", 400)
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 9000)
    with pytest.raises(ClientError) as quota:
        s3.put_object(Bucket=bucket, Key="b", Body=b"y" * 9000)
    assert _code(quota) == ("EntityTooLarge", 400)
    assert "quota" in quota.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="b")

    limited: Gateway = s3_start(JUSTSTORAGE_RATE_LIMIT_RPS="1")
    statuses = []
    for _ in range(10):
        answer = limited.signed("GET", f"/{TENANT}.rate?list-type=2")
        statuses.append(answer.status_code)
        if answer.status_code == 503:
            assert b"<Code>SlowDown</Code>" in answer.content
            assert int(answer.headers["retry-after"]) >= 1
            break
    assert 503 in statuses, statuses
    metrics = httpx.get(f"{limited.v1_url}/metrics", trust_env=False).text
    assert f'just_storage_throttled_requests_total{{tenant="{TENANT}"}}' in metrics


def test_serve_refuses_a_taken_s3_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = clean_env(tmp_path / "data", {"JUSTSTORAGE_S3_ADDR": f"127.0.0.1:{taken}"})
        proc = subprocess.run(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "JUSTSTORAGE_S3_ADDR" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_tls_listener_with_boto3_streaming_trailers(tmp_path: Path) -> None:
    """Over HTTPS boto3 sends aws-chunked bodies with a trailing checksum by default."""
    cert, key = self_signed(tmp_path)
    s3_port, port = free_port(), free_port()
    env = clean_env(
        tmp_path / "data",
        {
            "JUSTSTORAGE_S3_ADDR": f"127.0.0.1:{s3_port}",
            "JUSTSTORAGE_TLS_CERT": str(cert),
            "JUSTSTORAGE_TLS_KEY": str(key),
            "JUSTSTORAGE_S3_MASTER_KEY": "test-master-key-" + "0123456789abcdef" * 2,
        },
    )
    argv = [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = spawn(argv, env, tmp_path / "server.log", port, tls_ca=cert)
    try:
        server = Server(tmp_path / "data", env, process)
        s3_key = make_s3_key(server, [TENANT], ["objects:read", "objects:write"])
        client = boto3.client(
            "s3",
            endpoint_url=f"https://127.0.0.1:{s3_port}",
            aws_access_key_id=s3_key.access_key,
            aws_secret_access_key=s3_key.secret_key,
            region_name=REGION,
            verify=str(cert),
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        try:
            data = uuid.uuid4().bytes * 5000
            put = client.put_object(Bucket=f"{TENANT}.tls", Key="k", Body=data)
            assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
            assert put["ResponseMetadata"]["HTTPHeaders"].get("x-amz-checksum-crc32")
            assert client.get_object(Bucket=f"{TENANT}.tls", Key="k")["Body"].read() == data
        finally:
            client.close()
        server.client.close()
    finally:
        process.stop()


def _listeners(port: int) -> int:
    """Listening IPv4 sockets on `port` (/proc/net/tcp: local address, state 0A)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1 for line in lines if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
    )


def test_every_worker_serves_s3_and_shutdown_closes_the_listener(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path, {}, workers=2)
    port = int(gateway.s3_url.rsplit(":", 1)[1])
    try:
        s3 = gateway.client()
        bucket = f"{TENANT}.workers"
        for n in range(20):  # new connections, spread over both workers by the kernel
            s3.put_object(Bucket=bucket, Key=f"k{n}", Body=str(n).encode())
            gateway.close_clients()
            s3 = gateway.client()
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 20
        assert len(child_pids(gateway.server.pid)) == 2
        assert _listeners(port) == 2  # one SO_REUSEPORT socket per worker
    finally:
        gateway.stop()
    assert _listeners(port) == 0


def test_virtual_host_buckets_under_the_configured_domain(s3_start: Any) -> None:
    gateway: Gateway = s3_start(JUSTSTORAGE_S3_DOMAIN="s3.example.test")
    bucket = f"{TENANT}.vhost"
    assert gateway.signed("PUT", f"/{bucket}/k", body=b"v").status_code == 200
    by_host = gateway.signed("GET", "/k", host=f"{bucket}.s3.example.test")
    assert by_host.status_code == 200 and by_host.content == b"v"
    # Under another domain the Host names no bucket: the path does (path style).
    by_path = gateway.signed("GET", f"/{bucket}/k", host="elsewhere.test")
    assert by_path.status_code == 200 and by_path.content == b"v"
