"""The security probes of scripts/probe-security.sh: one line per defect of issue 23, PASS or FAIL.

Usage: probe_security.py FACEGATE_BINARY SHARED_DIR. Standard library only. Every connection stays on
loopback: the servers' egress policy is the default (public addresses) plus 127.0.0.2 (the probe's own
receivers); internal addresses are only registered, never triggered, and the webhooks are deleted.
"""

import http.client
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

BIN, SHARED = sys.argv[1], sys.argv[2]
NUAA = os.path.join(SHARED, "data/liveness/nuaa")
ANN_ENROL = ["ClientRaw/0004_01_00_01_406.jpg", "ClientRaw/0004_01_00_01_55.jpg"]
ANN = "ClientRaw/0004_01_06_03_210.jpg"
ANN_PRINTED = "ImposterRaw/0004_01_00_01_143.jpg"
ENV = {
    **os.environ,
    "FACEGATE_MODEL_MIRROR": os.environ.get("FACEGATE_MODEL_MIRROR", os.path.join(SHARED, "models")),
    "FACEGATE_MASTER_KEY": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    "FACEGATE_EGRESS_ALLOW": "127.0.0.2/32",
    "FACEGATE_RATE_LIMIT": "1000",
    "FACEGATE_WORKERS": "2",
}


def image(name):
    with open(os.path.join(NUAA, name), "rb") as f:
        return f.read()


class Server:
    """A `facegate serve` on a free loopback port over its own data folder."""

    def __init__(self, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="facegate-probe-")
        self.env = {**ENV, **(extra_env or {})}
        self.process = None

    def key(self, tenant, scopes):
        out = subprocess.run(
            [BIN, "keys", "create", "--tenant", tenant, "--scopes", scopes, "--json", "--data-dir", self.dir],
            env=self.env, check=True, capture_output=True, text=True).stdout
        return json.loads(out)["key"]

    def start(self):
        self.process = subprocess.Popen(
            [BIN, "serve", "--addr", "127.0.0.1:0", "--data-dir", self.dir],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        address = next(w for w in line.split() if w.startswith("http://"))
        self.host, self.port = address[len("http://"):].split(":")
        self.port = int(self.port)
        return self

    def stop(self):
        if self.process:
            self.process.kill()
            self.process.wait()

    def request(self, method, path, key=None, body=None, headers=None, timeout=60):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        sent = dict(headers or {})
        if key:
            sent["x-api-key"] = key
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            sent.setdefault("content-type", "application/json")
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode(errors="replace")
        return response.status, parsed, dict((k.lower(), v) for k, v in response.getheaders())


def office(server, key, name="office", liveness=False):
    """A collection with Ann enrolled, and a door open to everyone enrolled: (collection, ann, door)."""
    status, collection, _ = server.request("POST", "/v1/collections", key, {"name": name})
    assert status == 201, collection
    collection = collection["id"]
    status, ann, _ = server.request("POST", f"/v1/collections/{collection}/subjects", key, {"name": "Ann"})
    ann = ann["id"]
    for name_ in ANN_ENROL:
        status, body, _ = server.request(
            "POST", f"/v1/collections/{collection}/subjects/{ann}/faces", key, image(name_),
            {"content-type": "image/jpeg"})
        assert status == 201, body
    policy = {"allow_everyone": True, "timezone": "UTC", "liveness_required": liveness}
    status, door, _ = server.request("POST", "/v1/doors", key, {"name": f"{name}-door", "collection_id": collection, "policy": policy})
    assert status == 201, door
    return collection, ann, door["id"]


def attempt(server, key, door, frame=ANN):
    return server.request("POST", f"/v1/doors/{door}/attempts", key, image(frame), {"content-type": "image/jpeg"})


def percentile(values, p):
    values = sorted(values)
    return values[round((len(values) - 1) * p)]


RESULTS = []


def report(number, title, ok, detail):
    RESULTS.append(bool(ok))
    print(f"{number:>2} {'PASS' if ok else 'FAIL'}  {title}: {detail}", flush=True)


def probe(number, title):
    def wrap(function):
        def run(*args):
            try:
                ok, detail = function(*args)
            except Exception as error:  # a probe that cannot run is a failure, said as such
                ok, detail = False, f"probe error: {type(error).__name__}: {error}"
            report(number, title, ok, detail)
        return run
    return wrap


@probe(1, "an enroll key cannot open a door to a printed photo")
def enroll_key_and_doors(server, admin, enroller):
    _, _, door = office(server, admin, "p1", liveness=True)
    status, current, _ = server.request("GET", f"/v1/doors/{door}", admin)
    opened = {"name": "p1-door", "collection_id": current["collection_id"],
              "policy": {"allow_everyone": True, "liveness_required": False, "timezone": "UTC"}}
    replaced, _, _ = server.request("PUT", f"/v1/doors/{door}", enroller, opened)
    created, _, _ = server.request("POST", "/v1/doors", enroller,
                                   {"name": "p1-side", "collection_id": current["collection_id"], "policy": opened["policy"]})
    deleted, _, _ = server.request("DELETE", f"/v1/doors/{door}", enroller)
    _, answer, _ = attempt(server, admin, door, ANN_PRINTED)
    ok = (replaced, created, deleted) == (403, 403, 403) and answer.get("access") == "denied"
    return ok, f"enroll key PUT {replaced}, POST {created}, DELETE {deleted}; printed photo: {answer.get('access')} ({answer.get('reason')})"


def slow_body(server, key, path, length=100_000):
    s = socket.create_connection((server.host, server.port))
    s.sendall((f"POST {path} HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\ncontent-type: image/jpeg\r\n"
               f"content-length: {length}\r\n\r\n").encode())
    return s


@probe(2, "one tenant's 64 slow bodies do not close another tenant's door")
def fair_admission(server, hostile, victim):
    _, _, door = office(server, victim, "p2")
    held = [slow_body(server, hostile, "/v1/detect") for _ in range(64)]
    time.sleep(0.3)
    latencies, statuses = [], []
    for _ in range(20):
        started = time.monotonic()
        status, _, _ = attempt(server, victim, door)
        latencies.append((time.monotonic() - started) * 1000)
        statuses.append(status)
    for s in held:
        s.close()
    refused = sum(1 for s in statuses if s != 200)
    return refused == 0, (f"other tenant's door attempts: {20 - refused}/20 answered 200, "
                          f"p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms")


class Receiver:
    """A webhook receiver on loopback: answers 204 and notes when, or accepts and never answers."""

    def __init__(self, host, hang=False):
        self.socket = socket.socket()
        self.socket.bind((host, 0))
        self.socket.listen(64)
        self.host, self.port = self.socket.getsockname()
        self.hang, self.connections, self.received = hang, 0, []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.answer, args=(connection,), daemon=True).start()

    def answer(self, connection):
        connection.settimeout(20)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
            if self.hang:
                time.sleep(30)
                return
            self.received.append(time.monotonic())
            connection.sendall(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        except OSError:
            pass
        finally:
            connection.close()


def register(server, key, url, types):
    return server.request("POST", "/v1/webhooks", key, {"url": url, "event_types": types})


def receiver_url(server, key, receiver, types):
    """Registers a receiver on 127.0.0.2 (allowed by the probe's policy), or on 127.0.0.1 where the server
    knows no egress policy and takes plain http only to 127.0.0.1."""
    status, body, _ = register(server, key, f"http://{receiver.host}:{receiver.port}/hooks", types)
    return status, body


INTERNAL = ["https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/", "https://172.16.0.1/",
            "https://192.168.1.1/", "https://100.64.0.1/", "https://[fd00::1]/", "https://[fe80::1]/",
            "https://127.0.0.1/", "https://127.1/", "https://0x7f000001/", "https://2130706433/",
            "https://[::ffff:127.0.0.1]/", "http://127.0.0.1:9/", "https://[::1]/",
            "https://user:password@example.org/"]


@probe(3, "webhooks cannot reach internal addresses")
def egress(server, admin):
    accepted = []
    for url in INTERNAL:
        status, body, _ = register(server, admin, url, ["identity.decision"])
        if status == 201:
            accepted.append(url)
            server.request("DELETE", f"/v1/webhooks/{body['webhook']['id']}", admin)
    # A name that resolves to an internal address is refused when it is resolved, before any connection.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(3)
    port = listener.getsockname()[1]
    collection, _, _ = office(server, admin, "p3")
    status, body, _ = register(server, admin, f"https://localhost:{port}/hooks", ["identity.decision"])
    dialled, logged = False, ""
    if status == 201:
        hook = body["webhook"]["id"]
        server.request("POST", f"/v1/recognize?collection={collection}", admin, image(ANN), {"content-type": "image/jpeg"})
        try:
            listener.accept()[0].close()
            dialled = True
        except OSError:
            pass
        _, log, _ = server.request("GET", f"/v1/webhooks/{hook}/deliveries", admin)
        logged = next((d.get("last_error") or "" for d in log["deliveries"] if d.get("last_error")), "")
        server.request("DELETE", f"/v1/webhooks/{hook}", admin)
    listener.close()
    ok = not accepted and not dialled
    return ok, (f"{len(INTERNAL) - len(accepted)}/{len(INTERNAL)} internal URLs refused at registration; "
                f"a name resolving to loopback: {'dialled' if dialled else 'never dialled'}"
                + (f" ({logged})" if logged else ""))


@probe(4, "a hanging receiver delays only itself")
def slow_receiver(server, slow_key, fine_key):
    hanging, healthy = Receiver("127.0.0.2", hang=True), Receiver("127.0.0.2")
    if receiver_url(server, slow_key, hanging, ["door.decision"])[0] != 201:
        hanging, healthy = Receiver("127.0.0.1", hang=True), Receiver("127.0.0.1")
        receiver_url(server, slow_key, hanging, ["door.decision"])
    receiver_url(server, fine_key, healthy, ["door.decision"])
    _, _, slow_door = office(server, slow_key, "p4s")
    _, _, fine_door = office(server, fine_key, "p4f")
    for _ in range(3):
        attempt(server, slow_key, slow_door)
    deadline = time.monotonic() + 5
    while hanging.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    decided = time.monotonic()
    attempt(server, fine_key, fine_door)
    deadline = time.monotonic() + 40
    while not healthy.received and time.monotonic() < deadline:
        time.sleep(0.02)
    if not healthy.received:
        return False, "the healthy receiver got nothing in 40 s"
    delay = healthy.received[0] - decided
    return delay < 2, f"healthy receiver's delay while another hangs: {delay * 1000:.0f} ms"


@probe(5, "a not_live denial names nobody")
def disclosure(server, admin):
    _, _, door = office(server, admin, "p5", liveness=True)
    _, spoof, _ = attempt(server, admin, door, ANN_PRINTED)
    _, stranger, _ = attempt(server, admin, door, "ClientRaw/0013_01_07_03_240.jpg")
    leaks = [f"{which}.{field}" for which, answer in (("not_live", spoof), ("unknown", stranger))
             for field in ("subject", "score") if field in answer]
    return not leaks and spoof.get("reason") == "not_live", (
        f"not_live answer fields: {sorted(spoof)}; leaks: {leaks or 'none'}")


@probe(6, "configuration changes are audited")
def audit(server, admin):
    collection, _, door = office(server, admin, "p6")
    status, created, _ = server.request("POST", "/v1/keys", admin, {"name": "k", "scopes": ["search"]})
    server.request("DELETE", f"/v1/keys/{created['id']}", admin)
    status, hook, _ = register(server, admin, "https://hooks.example.org/in", ["door.decision"])
    if status == 201:
        server.request("DELETE", f"/v1/webhooks/{hook['webhook']['id']}", admin)
    server.request("PATCH", f"/v1/collections/{collection}", admin, {"retention_days": 30})
    server.request("DELETE", f"/v1/doors/{door}", admin)
    status, trail, _ = server.request("GET", "/v1/changes?limit=1000", admin)
    wanted = {"key.created", "key.revoked", "webhook.created", "webhook.deleted", "door.created", "door.deleted",
              "collection.updated"}
    seen = {c["action"] for c in trail["changes"]} if status == 200 else set()
    secret = status == 200 and ("fgk_" in json.dumps(trail) or "whsec_" in json.dumps(trail))
    return wanted <= seen and not secret, f"GET /v1/changes {status}; recorded {len(wanted & seen)}/{len(wanted)} kinds of change; secrets in the trail: {secret}"


def store_bytes(directory):
    data = b""
    for name in ("gallery.db", "gallery.db-wal"):
        try:
            with open(os.path.join(directory, name), "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


def rows(directory, sql, parameter):
    connection = sqlite3.connect(f"file:{os.path.join(directory, 'gallery.db')}?mode=ro", uri=True)
    try:
        return [r[0] if isinstance(r[0], bytes) else str(r[0]).encode() for r in connection.execute(sql, (parameter,))]
    finally:
        connection.close()


@probe(7, "erasure reaches ignore lists and queued webhook events")
def erasure(server, admin):
    collection, ann, _ = office(server, admin, "p7")
    dead = socket.socket()
    dead.bind(("127.0.0.2", 0))
    port = dead.getsockname()[1]
    dead.close()
    status, _, _ = register(server, admin, f"http://127.0.0.2:{port}/hooks", ["identity.decision", "subject.erased"])
    if status != 201:
        register(server, admin, f"http://127.0.0.1:{port}/hooks", ["identity.decision", "subject.erased"])
    for _ in range(2):
        server.request("POST", f"/v1/recognize?collection={collection}", admin, image(ANN), {"content-type": "image/jpeg"})
    status, bob, _ = server.request("POST", f"/v1/collections/{collection}/subjects", admin, {"name": "Bob"})
    bob = bob["id"]
    status, entry, _ = server.request("POST", f"/v1/collections/{collection}/subjects/{bob}/negatives", admin,
                                      image("ClientRaw/0013_01_07_03_240.jpg"), {"content-type": "image/jpeg"})
    negatives = rows(server.dir, "SELECT ciphertext FROM negatives WHERE id = ?", entry["id"])
    server.request("DELETE", f"/v1/collections/{collection}/subjects/{bob}/negatives/{entry['id']}", admin)
    time.sleep(0.3)
    left_negatives = sum(1 for n in negatives if n in store_bytes(server.dir))
    queued = rows(server.dir, "SELECT payload FROM outbox WHERE payload LIKE '%' || ? || '%'", ann)
    server.request("DELETE", f"/v1/collections/{collection}/subjects/{ann}", admin)
    time.sleep(0.3)
    left_queued = sum(1 for q in queued if q in store_bytes(server.dir))
    return (left_negatives, left_queued) == (0, 0) and negatives and queued, (
        f"deleted ignore-list templates left in gallery.db+WAL: {left_negatives}/{len(negatives)}; "
        f"queued events naming the erased subject left: {left_queued}/{len(queued)}")


@probe(8, "client request ids are not stored")
def request_ids(server, admin):
    collection, _, _ = office(server, admin, "p8")
    hostile = "<script>" + "x" * 5000 + "</script>"
    status, _, headers = server.request("POST", f"/v1/recognize?collection={collection}", admin, image(ANN),
                                        {"content-type": "image/jpeg", "x-request-id": hostile})
    _, trail, _ = server.request("GET", f"/v1/collections/{collection}/events?limit=1000", admin)
    longest = max(len(e["request_id"]) for e in trail["events"])
    stored = any("<script>" in json.dumps(e) for e in trail["events"])
    return not stored and longest <= 64, f"answered {status}; longest stored request id {longest} chars; markup stored: {stored}"


@probe(9, "anti-passback survives retention and deleting the paired door")
def anti_passback(_unused):
    clock_dir = tempfile.mkdtemp(prefix="facegate-probe-clock-")
    clock = os.path.join(clock_dir, "clock")
    with open(clock, "w") as f:
        f.write("2026-11-30T09:00:00Z")
    server = Server({"FACEGATE_CLOCK_FILE": clock, "FACEGATE_SWEEP_INTERVAL": "1"})
    admin = server.key("acme", "admin")
    server.start()
    try:
        collection, _, entry = office(server, admin, "p9")
        policy = lambda paired, direction: {"allow_everyone": True, "timezone": "UTC", "liveness_required": False,
                                            "anti_passback": {"direction": direction, "paired_door": paired}}
        _, exit_door, _ = server.request("POST", "/v1/doors", admin, {"name": "exit", "collection_id": collection, "policy": policy(entry, "exit")})
        server.request("PUT", f"/v1/doors/{entry}", admin, {"name": "p9-door", "collection_id": collection, "policy": policy(exit_door["id"], "entry")})
        first = attempt(server, admin, entry)[1].get("access")
        server.request("PATCH", f"/v1/collections/{collection}", admin, {"retention_days": 1})
        with open(clock, "w") as f:
            f.write("2026-12-03T09:00:00Z")
        time.sleep(3)
        after_retention = attempt(server, admin, entry)[1].get("reason") or "granted"
        server.request("DELETE", f"/v1/doors/{exit_door['id']}", admin)
        reset = server.request("DELETE", f"/v1/doors/{entry}/presence", admin)[0]
        attempt(server, admin, entry)
        after_delete = attempt(server, admin, entry)[1].get("reason") or "granted"
        ok = first == "granted" and after_retention == "anti_passback" and after_delete == "granted" and reset == 200
        return ok, (f"second entry after the trail expired: {after_retention}; after deleting the exit door: "
                    f"{after_delete}; presence reset endpoint: {reset}")
    finally:
        server.stop()


@probe(10, "door settings outside what works are refused")
def door_validation(server, admin):
    collection, _, _ = office(server, admin, "p10")
    cases = {
        "target_fmr 0.5": {"allow_everyone": True, "timezone": "UTC", "target_fmr": 0.5},
        "from +8:00": {"allow_everyone": True, "timezone": "UTC", "schedule": [{"days": ["mon"], "from": "+8:00", "to": "10:00"}]},
        "from 24:00": {"allow_everyone": True, "timezone": "UTC", "schedule": [{"days": ["mon"], "from": "24:00", "to": "06:00"}]},
    }
    answers = {}
    for name, policy in cases.items():
        answers[name] = server.request("POST", "/v1/doors", admin, {"name": f"p10 {name}", "collection_id": collection, "policy": policy})[0]
    return all(s == 400 for s in answers.values()), ", ".join(f"{k}: {v}" for k, v in answers.items())


def closed_after(server, payload, limit):
    s = socket.create_connection((server.host, server.port))
    s.sendall(payload)
    s.settimeout(limit)
    started = time.monotonic()
    try:
        while s.recv(4096):
            pass
        return time.monotonic() - started
    except OSError:
        return None
    finally:
        s.close()


@probe(11, "half-sent and idle connections are closed, connections capped")
def connections(_unused):
    server = Server({"FACEGATE_HEADER_TIMEOUT": "3", "FACEGATE_MAX_CONNECTIONS": "50"})
    server.key("acme", "admin")
    server.start()
    try:
        half = closed_after(server, b"GET /v1/health HTTP/1.1\r\nhost: x\r\nx-a: ", 12)
        idle = closed_after(server, b"GET /v1/health HTTP/1.1\r\nhost: x\r\n\r\n", 12)
        held = [socket.create_connection((server.host, server.port)) for _ in range(60)]
        time.sleep(0.3)
        refused = 0
        for s in held:
            s.settimeout(0.05)
            try:
                refused += s.recv(1) == b""
            except OSError:
                pass
        for s in held:
            s.close()
        show = lambda t: f"{t:.1f} s" if t is not None else "still open after 12 s"
        ok = half is not None and idle is not None and refused == 10
        return ok, f"half-sent head closed after {show(half)}; idle keep-alive after {show(idle)}; {refused}/10 connections past the cap closed"
    finally:
        server.stop()


@probe(12, "attendance CSV cells are never formulas")
def csv_injection(server, admin):
    collection, ann, door = office(server, admin, "p12")
    server.request("PATCH", f"/v1/collections/{collection}/subjects/{ann}", admin, {"name": "=HYPERLINK(\"http://x\",\"y\")"})
    attempt(server, admin, door)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    _, csv, _ = server.request("GET", f"/v1/collections/{collection}/attendance?from={today}&to={today}&format=csv", admin)
    line = next((l for l in str(csv).splitlines() if "HYPERLINK" in l), "")
    cell = line.split(",")[2] if line.count(",") >= 2 else ""
    return cell.startswith("\"'="), f"name cell: {cell[:24]}"


@probe(13, "failed key checks are throttled per address and key")
def throttle(_unused):
    server = Server()
    admin = server.key("acme", "admin")
    spare = server.key("acme", "search")
    server.start()
    try:
        _, created, _ = server.request("POST", "/v1/keys", admin, {"name": "r", "scopes": ["search"]})
        server.request("GET", "/v1/collections", created["secret"])
        server.request("DELETE", f"/v1/keys/{created['id']}", admin)
        revoked = [server.request("GET", "/v1/collections", created["secret"])[0] for _ in range(25)]
        guesses = [server.request("GET", "/v1/collections", f"fgk_guess{i}")[0] for i in range(40)]
        first_use = server.request("GET", "/v1/collections", spare)[0]
        ok = 429 in revoked and first_use == 200
        return ok, f"revoked key x25: {revoked.count(401)}x401 {revoked.count(429)}x429; a valid key's first use after 40 guesses: {first_use}"
    finally:
        server.stop()


@probe(14, "headers, bounds and metrics")
def small_things(server, admin):
    status, _, headers = server.request("POST", "/v1/keys", admin, {"name": "h", "scopes": ["search"]})
    cached = headers.get("cache-control"), headers.get("x-content-type-options")
    many = {f"x-h{i}": "v" for i in range(150)}
    big_status, big_body, _ = server.request("GET", "/v1/collections", admin, headers=many)
    bmp = b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 100000, 100000, 1, 24, 0, 0, 0, 0, 0, 0)
    bmp_status, _, _ = server.request("POST", "/v1/detect", admin, bmp, {"content-type": "image/bmp"})
    long_status, _, _ = register(server, admin, "https://hooks.example.org/" + "a" * 3000, ["door.decision"])
    _, metrics, _ = server.request("GET", "/metrics")
    totals = "facegate_gallery" in str(metrics)
    envelope = isinstance(big_body, dict) and "error" in big_body
    ok = cached == ("no-store", "nosniff") and big_status == 431 and envelope and bmp_status == 413 and long_status == 400 and not totals
    return ok, (f"key answer cache-control/nosniff: {cached}; 150 headers: {big_status} {'envelope' if envelope else 'bare'}; "
                f"100000x100000 BMP: {bmp_status}; 3 kB webhook URL: {long_status}; anonymous /metrics gallery totals: {totals}")


def main():
    started = time.monotonic()
    server = Server()
    admin = server.key("acme", "admin")
    enroller = server.key("acme", "enroll")
    hostile = server.key("hostile", "admin")
    other = server.key("other", "admin")
    server.start()
    print(f"facegate at http://{server.host}:{server.port} ({BIN})", flush=True)
    try:
        enroll_key_and_doors(server, admin, enroller)
        fair_admission(server, hostile, other)
        egress(server, admin)
        slow_receiver(server, hostile, other)
        disclosure(server, admin)
        audit(server, admin)
        erasure(server, admin)
        request_ids(server, admin)
        anti_passback(None)
        door_validation(server, admin)
        connections(None)
        csv_injection(server, admin)
        throttle(None)
        small_things(server, admin)
    finally:
        server.stop()
    passed = sum(RESULTS)
    print(f"{passed}/{len(RESULTS)} passed in {time.monotonic() - started:.0f} s", flush=True)
    sys.exit(0 if passed == len(RESULTS) else 1)


if __name__ == "__main__":
    main()
