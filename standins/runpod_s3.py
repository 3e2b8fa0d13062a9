"""RunPod's S3-compatible API for one network volume, on 127.0.0.1: moto's S3 server behind a proxy
that applies RunPod's differences (docs/internals/testing.md; RunPod docs: storage/s3-api).

moto (a real S3 implementation, in server mode over HTTP) stores the objects; the proxy in front of it
is what clients talk to and plays RunPod's gateway:
- the bucket exists already and is named as the volume id; CreateBucket is refused (501), so is
  DeleteObjects (501; single DeleteObject works), and so are presigned URLs (403);
- SigV4 is checked (access key, secret, signature) and the credential's region must be the data center:
  another one answers 403, as RunPod does when endpoint and region do not match;
- requests more than an hour off the server clock answer 403 RequestTimeTooSkewed (`clock_offset_s`
  moves the server's clock);
- PutObject at or above `put_limit` (RunPod: 500 MB; tests scale it down) answers 400 EntityTooLarge,
  as does an UploadPart above it; moto's 5 MB minimum part size is lifted (RunPod does not enforce it);
- listings include directory entries (`dir/`), and in-progress multipart uploads show up under
  `.s3compat_uploads/` until they are completed or aborted;
- a listing page has at most 1000 keys, whatever MaxKeys asks (moto would send them all);
- `repeat_token` > 0 makes that many ListObjectsV2 pages hand out the continuation token the request
  came with (RunPod's "same next token was received twice"); `slow_lists` > 0 answers that many listings
  503 SlowDown first (the client must retry).
With `volume_dir`, the volume is a directory, as on RunPod (objects are files): what is written through
S3 appears there, and what someone writes there (the pod sandbox's /workspace) is listed and served.
`requests` records (method, key, operation) of every request that reached the proxy.

    with RunPodS3(volume_id="vol-1", data_center="EU-RO-1", volume_dir=workspace) as s3:
        s3.endpoint_url, s3.access_key, s3.secret_key
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from standins.ports import free_port

UPLOADS = ".s3compat_uploads"
MAX_KEYS = 1000
MiB = 1024 * 1024


@dataclass
class S3Request:
    method: str
    key: str
    op: str
    status: int = 0


def _xml_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()


def _signing_key(secret: str, date: str, region: str) -> bytes:
    k = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


@dataclass
class RunPodS3:
    volume_id: str = "vol-s3test"
    data_center: str = "EU-RO-1"
    access_key: str = "user_2f21CfO73Mm2Uq2lEGFiEF24IPw"
    secret_key: str = "rps_standin_secret_0123456789abcdef"
    put_limit: int = 500 * MiB
    volume_dir: Path | None = None
    clock_offset_s: float = 0.0
    repeat_token: int = 0
    slow_lists: int = 0
    requests: list[S3Request] = field(default_factory=list)
    on_request: Callable[[S3Request], None] | None = None  # called before each request is served (tests)

    def __post_init__(self) -> None:
        self._moto = None
        self._proxy: ThreadingHTTPServer | None = None
        self._lock = threading.RLock()
        self._synced: dict[str, tuple[int, int]] = {}  # volume_dir bridge: key -> (size, mtime_ns) moto has
        self._dirs: set[str] = set()  # directory entries made (no volume_dir)
        self._backend = None
        self.moto_port = 0
        self.port = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> RunPodS3:
        import logging

        import moto.s3.models as s3models
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise

        s3models.S3_UPLOAD_PART_MIN_SIZE = 0  # RunPod: "the 5MB minimum part size is not enforced"
        self.moto_port = free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self._moto.start()
        self.backend().create_bucket(Bucket=self.volume_id)  # RunPod: the volume is the bucket, always there
        standin = self

        class Handler(_ProxyHandler):
            s3 = standin

        self._proxy = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._proxy.daemon_threads = True
        self.port = self._proxy.server_address[1]
        threading.Thread(target=self._proxy.serve_forever, name="runpod-s3-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.shutdown()
            self._proxy.server_close()
            self._proxy = None
        if self._moto is not None:
            try:
                import urllib.request

                urllib.request.urlopen(
                    urllib.request.Request(f"http://127.0.0.1:{self.moto_port}/moto-api/reset", method="POST"),
                    timeout=10,
                ).close()
            except OSError:
                pass
            self._moto.stop()
            self._moto = None

    def __enter__(self) -> RunPodS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        """The runner's settings for this stand-in."""
        return {
            "RUNPOD_S3_ACCESS_KEY": self.access_key,
            "RUNPOD_S3_SECRET_KEY": self.secret_key,
            "RUNPOD_S3_ENDPOINT_URL": self.endpoint_url,
        }

    def backend(self):
        """A boto3 client straight to moto (no RunPod rules): for the stand-in's own bookkeeping and tests."""
        if self._backend is None:
            self._backend = self._new_backend()
        return self._backend

    def _new_backend(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.moto_port}",
            region_name="us-east-1",
            aws_access_key_id="standin",
            aws_secret_access_key="standin",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def keys(self) -> list[str]:
        """Every key in the bucket (directory entries and upload area included), as the backend has them."""
        self._import_dir()
        out: list[str] = []
        pages = self.backend().get_paginator("list_objects_v2").paginate(Bucket=self.volume_id)
        for page in pages:
            out += [c["Key"] for c in page.get("Contents", [])]
        return out

    def ops(self, op: str) -> list[S3Request]:
        return [r for r in self.requests if r.op == op]

    # ------------------------------------------------------------ the volume as a directory
    def _import_dir(self) -> None:
        """What is on the directory, moto has (new and changed files, folders as `dir/`; removed ones go)."""
        if self.volume_dir is None:
            return
        with self._lock:
            root = Path(self.volume_dir)
            present: dict[str, tuple[int, int]] = {}
            for dirpath, dirnames, filenames in os.walk(root):
                rel_dir = Path(dirpath).relative_to(root).as_posix()
                if rel_dir != ".":
                    present[rel_dir + "/"] = (0, 0)
                for name in filenames:
                    p = Path(dirpath) / name
                    try:
                        st = p.stat()
                    except OSError:
                        continue
                    key = p.relative_to(root).as_posix()
                    present[key] = (st.st_size, st.st_mtime_ns)
            client = self.backend()
            for key, stamp in present.items():
                if self._synced.get(key) != stamp:
                    body = b"" if key.endswith("/") else (root / key).read_bytes()
                    client.put_object(Bucket=self.volume_id, Key=key, Body=body)
                    self._synced[key] = stamp
            for key in [k for k in self._synced if k not in present]:
                client.delete_object(Bucket=self.volume_id, Key=key)
                del self._synced[key]

    def _export(self, key: str, deleted: bool = False) -> None:
        """A write through S3 lands on the directory (atomically, like RunPod's gateway finishing a file)."""
        if self.volume_dir is None:
            if not deleted:
                self._add_dir_entries(key)
            return
        with self._lock:
            path = Path(self.volume_dir) / key
            if deleted:
                path.unlink(missing_ok=True)
                self._synced.pop(key, None)
                return
            body = self.backend().get_object(Bucket=self.volume_id, Key=key)["Body"].read()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.s3tmp")
            tmp.write_bytes(body)
            os.replace(tmp, path)
            st = path.stat()
            self._synced[key] = (st.st_size, st.st_mtime_ns)

    def _add_dir_entries(self, key: str) -> None:
        parts = key.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            entry = "/".join(parts[:i]) + "/"
            with self._lock:
                if entry in self._dirs:
                    continue
                self._dirs.add(entry)
            self.backend().put_object(Bucket=self.volume_id, Key=entry, Body=b"")

    def _upload_area(self, upload_id: str, key: str, done: bool) -> None:
        marker = f"{UPLOADS}/{upload_id}/{key.replace('/', '_')}.meta"
        if self.volume_dir is not None:
            path = Path(self.volume_dir) / marker
            if done:
                path.unlink(missing_ok=True)
                try:
                    path.parent.rmdir()
                    path.parent.parent.rmdir()
                except OSError:
                    pass
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(key)
            return
        client = self.backend()
        if done:
            client.delete_object(Bucket=self.volume_id, Key=marker)
        else:
            client.put_object(Bucket=self.volume_id, Key=marker, Body=key.encode())


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    s3: RunPodS3

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    # ------------------------------------------------------------
    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        sent = {k.lower() for k in (headers or {})}
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "content-length" not in sent:
            self.send_header("Content-Length", str(len(body)))
        if body and "content-type" not in sent:
            self.send_header("Content-Type", "application/xml")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _refuse(self, record: S3Request, status: int, code: str, message: str) -> None:
        record.status = status
        self._reply(status, _xml_error(code, message))

    def _handle(self) -> None:
        s3 = self.s3
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        parts = split.path.lstrip("/").split("/", 1)
        bucket = unquote(parts[0]) if parts[0] else ""
        key = unquote(parts[1]) if len(parts) > 1 else ""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        op = _operation(self.command, bucket, key, query)
        if op == "PutObject" and self.headers.get("x-amz-copy-source"):
            op = "CopyObject"
        record = S3Request(self.command, key, op)
        s3.requests.append(record)
        if s3.on_request is not None:
            s3.on_request(record)

        problem = self._auth_problem(split.path, split.query)
        if problem:
            return self._refuse(record, 403, *problem)
        if record.op == "CreateBucket":
            return self._refuse(record, 501, "NotImplemented", "CreateBucket is not supported: use the RunPod console")
        if record.op == "DeleteObjects":
            return self._refuse(record, 501, "NotImplemented", "DeleteObjects is not supported")
        if bucket and bucket != s3.volume_id:
            return self._refuse(record, 404, "NoSuchBucket", "The specified bucket does not exist")
        if record.op == "PutObject" and length >= s3.put_limit:
            return self._refuse(record, 400, "EntityTooLarge", "PutObject is limited to 500MB: use multipart")
        if record.op == "UploadPart" and length > s3.put_limit:
            return self._refuse(record, 400, "EntityTooLarge", "a part is limited to 500MB")
        if record.op == "ListObjectsV2" and s3.slow_lists > 0:
            s3.slow_lists -= 1
            return self._refuse(record, 503, "SlowDown", "computing checksums, retry")

        s3._import_dir()
        status, headers, answer = self._forward(body, _cap_max_keys(self.path) if op.startswith("List") else self.path)
        record.status = status
        if 200 <= status < 300:
            answer = self._after(record, key, query, answer)
        self._reply(status, answer, headers)

    def _after(self, record: S3Request, key: str, query: dict, answer: bytes) -> bytes:
        s3 = self.s3
        if record.op in ("PutObject", "CompleteMultipartUpload", "CopyObject"):
            s3._export(key)
        elif record.op == "DeleteObject":
            s3._export(key, deleted=True)
        if record.op == "CreateMultipartUpload":
            m = re.search(rb"<UploadId>([^<]+)</UploadId>", answer)
            if m:
                s3._upload_area(m.group(1).decode(), key, done=False)
        elif record.op in ("CompleteMultipartUpload", "AbortMultipartUpload"):
            s3._upload_area(query.get("uploadId", [""])[0], key, done=True)
        if record.op == "ListObjectsV2" and s3.repeat_token > 0:
            asked = query.get("continuation-token", [""])[0]
            if asked and b"<NextContinuationToken>" in answer:
                s3.repeat_token -= 1
                answer = re.sub(
                    rb"<NextContinuationToken>[^<]*</NextContinuationToken>",
                    b"<NextContinuationToken>" + _xml_escape(asked).encode() + b"</NextContinuationToken>",
                    answer,
                )
        return answer

    def _forward(self, body: bytes, path: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.s3.moto_port, timeout=120)
        try:
            skip = {"expect", "connection", "content-length", "transfer-encoding", "keep-alive"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = {
                k: v
                for k, v in resp.getheaders()
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date")
            }
            if self.command == "HEAD":
                out["Content-Length"] = resp.getheader("Content-Length", "0")
            return resp.status, out, data
        finally:
            conn.close()

    def _auth_problem(self, raw_path: str, raw_query: str) -> tuple[str, str] | None:
        s3 = self.s3
        if "X-Amz-Signature" in raw_query or "Signature=" in raw_query:
            return "AccessDenied", "presigned URLs are not supported"
        auth = self.headers.get("Authorization", "")
        m = re.match(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, *"
            r"SignedHeaders=([^,]+), *Signature=([0-9a-f]+)",
            auth,
        )
        if not m:
            return "AccessDenied", "SigV4 authorization required"
        access, date, region, signed, signature = m.groups()
        if access != s3.access_key:
            return "InvalidAccessKeyId", "The access key does not exist"
        if region != s3.data_center:
            return "AccessDenied", "Access Denied"  # RunPod: endpoint/region mismatch is a bare 403
        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            sent = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return "AccessDenied", "X-Amz-Date missing"
        if abs(time.time() + s3.clock_offset_s - sent) > 3600:
            return "RequestTimeTooSkewed", "The difference between the request time and the server's time is too large"
        pairs = sorted(tuple(p.partition("=")[::2]) for p in raw_query.split("&") if p)
        canonical = "\n".join(
            [
                self.command,
                raw_path,
                "&".join(f"{k}={v}" for k, v in pairs),
                "".join(f"{h}:{' '.join((self.headers.get(h) or '').split())}\n" for h in signed.split(";")),
                signed,
                self.headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ]
        )
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                amz_date,
                f"{date}/{region}/s3/aws4_request",
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        expected = hmac.new(_signing_key(s3.secret_key, date, region), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            )
        return None


def _cap_max_keys(path: str) -> str:
    """At most 1000 keys per listing page, as S3 (moto returns as many as asked)."""
    return re.sub(r"([?&]max-keys=)(\d+)", lambda m: m.group(1) + str(min(int(m.group(2)), MAX_KEYS)), path)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _operation(method: str, bucket: str, key: str, query: dict) -> str:
    if not bucket:
        return "ListBuckets"
    if not key:
        if method == "PUT":
            return "CreateBucket"
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        if method == "HEAD":
            return "HeadBucket"
        if method == "GET":
            return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
        return f"{method} bucket"
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPart"
        return "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if method == "HEAD":
        return "HeadObject"
    return "GetObject"


__all__ = ["RunPodS3", "S3Request"]
