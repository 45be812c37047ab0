"""Helpers for the model hub tests: real (tiny, random-weight) model packages and a loopback HTTP
server that records every request, so tests can prove what was (not) downloaded."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path
from typing import Any

from mome.package import ModelPackage


@functools.cache
def _base_package() -> ModelPackage:
    from stand_ins import random_package

    return random_package("tiny", class_keys=("liver", "spleen"), name="tiny-test", version="1.0.0")


def build_package(path: Path, name: str = "tiny-test", version: str = "1.0.0", **info: Any) -> Path:
    """Save a valid package named ``name@version`` at ``path`` (a folder, or a .zip if it ends so)."""
    return _base_package().with_version(version, name=name, **info).save(path)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def registry_item(name: str, version: str, url: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """A Models.json entry whose checksum and size describe ``data``."""
    return {"name": name, "version": version, "url": url, "sha256": sha256_bytes(data), "size": len(data), **extra}


def write_registry(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(items))
    return path


class LoopbackServer:
    """``http.server`` on 127.0.0.1 in a thread, serving ``files`` (URL path → bytes); 404 otherwise.
    ``requests`` lists every path asked for, in order."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path.lstrip('/')}"

    def serve(self, path: str, data: bytes) -> str:
        self.files["/" + path.lstrip("/")] = data
        return self.url(path)

    def __enter__(self) -> "LoopbackServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
