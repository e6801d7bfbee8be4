#!/usr/bin/env python3
"""Storm test of //serving:server on loopback (issue 14): every class of hostile
input sent concurrently (bounded), then N good requests, while a health probe
runs throughout and the server's resident memory is sampled.

  bazel build //serving:server && python3 tools/serving_storm_test.py \
      [--photo ../shared/data/photos/face_sdk_test1.jpg] [--good 10000]

Starts the server itself (bazel-bin/serving/server, the shipped model, a free
port), prints one line per hostile class (the status codes it got, or how the
connection ended), the good requests' errors and latency, the health probe's
failures and worst latency, and the RSS before, at peak and after. Exits 1 if
the server died, a good request failed, a health probe failed, or RSS grew by
more than --max_rss_growth_mb. Python standard library only.
"""
import argparse
import collections
import concurrent.futures
import gzip
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


# ---------------------------------------------------------------- raw HTTP

def send_raw(port, chunks, read_timeout=15.0, pause=0.0):
    """Sends byte chunks on one connection, returns the status code or how it ended."""
    try:
        with socket.create_connection((HOST, port), timeout=read_timeout) as s:
            for chunk in chunks:
                try:
                    s.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server stopped reading: fine, see what it answered
                if pause:
                    time.sleep(pause)
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            data = b""
            while b"\r\n" not in data:
                part = s.recv(4096)
                if not part:
                    break
                data += part
            if data.startswith(b"HTTP/1."):
                return int(data.split(b" ")[1])
            return "closed"
    except socket.timeout:
        return "timeout"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except OSError as e:
        return f"oserror:{e.errno}"


def request_head(method, path, headers, length=None):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def generate(total, piece=1 << 16, byte=b"A"):
    block = byte * piece
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield block[:n]
        sent += n


def chunked(total, piece=1 << 16):
    for part in generate(total, piece):
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


# ---------------------------------------------------------------- hostile images

def png_bomb(side=100000):
    """A PNG declaring side x side RGB pixels with a tiny (truncated) stream."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_progressive(width, height, scans=1):
    """A progressive JPEG header (SOF2) with `scans` DC scans of no data."""
    dqt = jpeg_segment(0xDB, b"\x00" + bytes([1] * 64))
    sof2 = jpeg_segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    dht = jpeg_segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    sos = jpeg_segment(0xDA, b"\x01\x01\x00\x00\x00\x00")
    return b"\xFF\xD8" + dqt + sof2 + dht + (sos + b"\x00") * scans + b"\xFF\xD9"


# ---------------------------------------------------------------- the classes

def hostile_classes(port, limit, photo):
    faces = "/v1/faces"
    infer = "/v2/models/dmue/infer"
    jtype = [("Content-Type", "application/json")]
    itype = [("Content-Type", "image/jpeg")]

    def body(path, headers, data):
        return lambda: send_raw(port, [request_head("POST", path, headers, len(data)), data])

    def streamed(path, headers, make_parts):
        return lambda: send_raw(port, [request_head("POST", path, headers)] + list(make_parts()))

    nested = ("[" * 500000 + "]" * 500000).encode()
    nested_obj = ('{"inputs": ' + "[" * 200000 + "]" * 200000 + "}").encode()
    gzip_bomb = gzip.compress(b" " * (64 << 20), 9)
    huge_shape = json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                         "shape": [2 ** 40, 3, 64, 64], "data": [0.0]}]}).encode()
    overflow_shape = json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                             "shape": [2 ** 62, 2 ** 62, 3, 3], "data": [0.0]}]}).encode()
    wrong_types = json.dumps({"inputs": {"name": 7, "datatype": [], "shape": "x", "data": None}}).encode()
    truncated = photo[: len(photo) // 3]
    return {
        "body over the limit (Content-Length)": lambda: send_raw(
            port, [request_head("POST", faces, itype, limit + 1)] + list(generate(limit + 1))),
        "declared length far over the limit": lambda: send_raw(
            port, [request_head("POST", faces, itype, 1 << 40)] + list(generate(1 << 20))),
        "chunked body over the limit": streamed(faces, itype + [("Transfer-Encoding", "chunked")],
                                                lambda: chunked(limit + (4 << 20))),
        "body without a length": lambda: send_raw(
            port, [request_head("POST", faces, itype + [("Connection", "close")])] + list(generate(limit + (4 << 20)))),
        "gzip bomb (64 KB -> 64 MB)": body(infer, jtype + [("Content-Encoding", "gzip")], gzip_bomb),
        "20,000 headers": lambda: send_raw(
            port, [("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" +
                    "".join(f"X-H{i}: v\r\n" for i in range(20000)) + "\r\n").encode()]),
        "64 MB header line": lambda: send_raw(
            port, [b"GET /v2/health/live HTTP/1.1\r\nX-Big: "] + list(generate(64 << 20)) + [b"\r\n\r\n"]),
        "64 MB request line": lambda: send_raw(port, [b"GET /"] + list(generate(64 << 20)) + [b" HTTP/1.1\r\n\r\n"]),
        "deeply nested JSON array": body(infer, jtype, nested),
        "deeply nested JSON field": body(infer, jtype, nested_obj),
        "JSON of the wrong types": body(infer, jtype, wrong_types),
        "batch dimension beyond int range": body(infer, jtype, huge_shape),
        "shape product overflowing int64": body(infer, jtype, overflow_shape),
        "PNG declaring 100000 x 100000": body(faces, [("Content-Type", "image/png")], png_bomb()),
        "progressive JPEG declaring 30000 x 30000": body(faces, itype, jpeg_progressive(30000, 30000)),
        "JPEG with 400 scans": body(faces, itype, jpeg_progressive(64, 64, scans=400)),
        "truncated JPEG": body(faces, itype, truncated),
        "random bytes as an image": body(faces, itype, os.urandom(50000)),
        "slow client (1 byte / 0.5 s)": lambda: send_raw(
            port, [bytes([b]) for b in request_head("POST", faces, itype, 10)[:40]], pause=0.5, read_timeout=30),
        "idle connection": lambda: send_raw(port, [b"GET /v2/health/live HTTP/1.1\r\n"], read_timeout=30),
    }


# ---------------------------------------------------------------- probes

class HealthProbe(threading.Thread):
    def __init__(self, port, interval=0.2, timeout=3.0):
        super().__init__(daemon=True)
        self.port, self.interval, self.timeout = port, interval, timeout
        self.failures, self.count, self.worst = 0, 0, 0.0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
                c.request("GET", "/v2/health/live")
                ok = c.getresponse().status == 200
                c.close()
            except OSError:
                ok = False
            self.worst = max(self.worst, time.monotonic() - start)
            self.count += 1
            self.failures += 0 if ok else 1
            self.stop.wait(self.interval)


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0.0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid) or 0.0)
            self.stop.wait(0.05)


def good_requests(port, photo, count, concurrency):
    latencies, errors = [], collections.Counter()

    def one(_):
        start = time.monotonic()
        try:
            c = http.client.HTTPConnection(HOST, port, timeout=60)
            c.request("POST", "/v1/faces", body=photo, headers={"Content-Type": "image/jpeg"})
            r = c.getresponse()
            r.read()
            c.close()
            status = r.status
        except OSError as e:
            status = f"oserror:{e}"
        return status, time.monotonic() - start

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for status, seconds in pool.map(one, range(count)):
            if status == 200:
                latencies.append(seconds)
            else:
                errors[status] += 1
    latencies.sort()
    p50 = latencies[len(latencies) // 2] if latencies else float("nan")
    return errors, p50


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.path.join(root, "bazel-bin/serving/server"))
    parser.add_argument("--photo", default=os.path.join(root, "../shared/data/photos/face_sdk_test1.jpg"))
    parser.add_argument("--good", type=int, default=10000)
    parser.add_argument("--good_concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="times each hostile class is sent")
    parser.add_argument("--concurrency", type=int, default=16, help="hostile connections at once")
    parser.add_argument("--max_request_bytes", type=int, default=20 << 20)
    parser.add_argument("--max_rss_growth_mb", type=float, default=1024)
    args = parser.parse_args()
    with open(args.photo, "rb") as f:
        photo = f.read()
    port = free_port()
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "dmue_storm_server.log"), "w")
    server = subprocess.Popen([args.server, f"--port={port}", "--grpc_port=0", f"--host={HOST}"],
                              cwd=root, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection(HOST, port, timeout=2)
                c.request("GET", "/v2/health/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            print("server never became ready; see", log.name)
            return 1
        good_requests(port, photo, 50, 4)  # warm-up
        baseline = rss_mb(server.pid)
        health, sampler = HealthProbe(port), RssSampler(server.pid)
        health.start()
        sampler.start()

        classes = hostile_classes(port, args.max_request_bytes, photo)
        results = collections.defaultdict(collections.Counter)
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            futures = {pool.submit(fn): name for name, fn in classes.items() for _ in range(args.repeat)}
            for future in concurrent.futures.as_completed(futures):
                name = futures[future]
                results[name][str(future.result())] += 1
                print(f"  done: {name} -> {dict(results[name])} ({time.monotonic() - start:.1f} s)", flush=True)
        storm_seconds = time.monotonic() - start
        storm_peak = sampler.peak
        alive_after_storm = server.poll() is None

        errors, p50 = good_requests(port, photo, args.good, args.good_concurrency) if alive_after_storm else ({"server dead": 1}, 0)
        health.stop.set()
        sampler.stop.set()
        health.join()
        sampler.join()
        after = rss_mb(server.pid)
        alive = server.poll() is None

        print(f"hostile classes ({len(classes)} x {args.repeat}, {args.concurrency} at once, {storm_seconds:.1f} s):")
        for name in classes:
            print(f"  {name:45s} {dict(results[name])}")
        print(f"good requests: {args.good} at concurrency {args.good_concurrency}, errors {dict(errors) or 0}, "
              f"p50 {1000 * p50:.1f} ms")
        print(f"health probe: {health.count} probes, {health.failures} failed, worst {1000 * health.worst:.0f} ms")
        print(f"RSS MB: before {baseline:.0f}, peak during the storm {storm_peak:.0f}, "
              f"peak overall {sampler.peak:.0f}, after {after or 0:.0f}")
        growth = sampler.peak - baseline
        failed = (not alive) or errors or health.failures or growth > args.max_rss_growth_mb
        print("server alive" if alive else "SERVER DIED", "; FAIL" if failed else "; PASS")
        return 1 if failed else 0
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
