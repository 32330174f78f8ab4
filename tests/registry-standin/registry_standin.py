#!/usr/bin/env python3
"""A STAND-IN for a Confluent-compatible schema registry, for the tests only.

No Confluent-compatible registry server installs from the package registries
this project may use (Karapace is not on PyPI; npm and crates.io hold
clients, not servers; Debian has none), so the end-to-end tests run this:
the endpoints of the Confluent Schema Registry REST API that distans and the
client libraries (confluent-kafka's AvroSerializer, kafkajs'
@kafkajs/confluent-schema-registry) call, in memory, Python standard library
only. It is not a registry: it does NOT check compatibility (it stores and
reports a subject's level; the producer contract states the rule, and
distans checks each writer schema it reads against its own by Avro's rules).

Endpoints (Confluent's "Schema Registry API Reference"):
  GET  /schemas/ids/{id}                         {"schema": ...}
  GET  /schemas/ids/{id}/versions                [{"subject", "version"}]
  GET  /subjects                                 ["subject", ...]
  GET  /subjects/{subject}/versions              [1, 2, ...]
  GET  /subjects/{subject}/versions/{v|latest}   {"subject","id","version","schema"}
  POST /subjects/{subject}/versions              {"schema": ...} -> {"id": ...}
  POST /subjects/{subject}                       {"schema": ...} -> {"subject","id","version","schema"} or 404 40403
  GET|PUT /config/{subject}, GET|PUT /config     {"compatibility": ...}

Ids start at --first-id (default 57, unlike distans' embedded ids), the
same schema under two subjects keeps one id (as Confluent's does), a schema
registered again under its subject keeps its version. Optional HTTP basic
auth (--user, --password-file), TLS (--certfile, --keyfile), and a state
file that survives a restart (--state). Prints
"listening on HOST:PORT" once serving (--port 0: a free port).
"""

import argparse
import base64
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class Store:
    def __init__(self, first_id, state=None):
        self.state = state
        self.lock = threading.Lock()
        self.next_id = first_id
        self.ids = {}  # canonical schema text -> id
        self.schemas = {}  # id -> schema text as first registered
        self.subjects = {}  # subject -> [id of version 1, id of version 2, ...]
        self.config = {"": "BACKWARD"}  # subject ("" global) -> compatibility level
        if state and os.path.exists(state):
            with open(state, encoding="utf-8") as f:
                saved = json.load(f)
            self.next_id = saved["next_id"]
            self.schemas = {int(k): v for k, v in saved["schemas"].items()}
            self.ids = {self.canonical(v): k for k, v in self.schemas.items()}
            self.subjects = saved["subjects"]
            self.config = saved["config"]

    def save(self):
        """Writes the store to --state (called with the lock held), so a
        restarted stand-in serves what it served before."""
        if not self.state:
            return
        saved = {"next_id": self.next_id, "schemas": self.schemas, "subjects": self.subjects, "config": self.config}
        with open(self.state + ".tmp", "w", encoding="utf-8") as f:
            json.dump(saved, f)
        os.replace(self.state + ".tmp", self.state)

    @staticmethod
    def canonical(text):
        try:
            return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
        except ValueError:
            return text

    def register(self, subject, text):
        with self.lock:
            key = self.canonical(text)
            schema_id = self.ids.get(key)
            if schema_id is None:
                schema_id = self.next_id
                self.next_id += 1
                self.ids[key] = schema_id
                self.schemas[schema_id] = text
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            self.save()
            return schema_id

    def lookup(self, subject, text):
        with self.lock:
            schema_id = self.ids.get(self.canonical(text))
            versions = self.subjects.get(subject, [])
            if schema_id is None or schema_id not in versions:
                return None
            return self.version_record(subject, versions.index(schema_id) + 1)

    def version_record(self, subject, version):
        schema_id = self.subjects[subject][version - 1]
        return {"subject": subject, "id": schema_id, "version": version, "schema": self.schemas[schema_id]}


class Handler(BaseHTTPRequestHandler):
    store = None
    credentials = None  # the expected Authorization header, or None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("registry-standin: " + (fmt % args) + "\n")

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.answer(status, {"error_code": code, "message": message})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def route(self, method):
        if self.credentials is not None and self.headers.get("Authorization") != self.credentials:
            return self.error(401, 401, "Unauthorized")
        parts = [unquote(p) for p in urlsplit(self.path).path.strip("/").split("/") if p]
        store = self.store
        try:
            if method == "GET" and len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
                text = store.schemas.get(int(parts[2]))
                if text is None:
                    return self.error(404, 40403, "Schema not found")
                return self.answer(200, {"schema": text})
            if method == "GET" and len(parts) == 4 and parts[:2] == ["schemas", "ids"] and parts[3] == "versions":
                schema_id = int(parts[2])
                found = [
                    {"subject": s, "version": v.index(schema_id) + 1}
                    for s, v in store.subjects.items()
                    if schema_id in v
                ]
                return self.answer(200, found) if found else self.error(404, 40403, "Schema not found")
            if method == "GET" and parts == ["subjects"]:
                return self.answer(200, sorted(store.subjects))
            if len(parts) >= 2 and parts[0] == "subjects":
                subject = parts[1]
                if method == "POST" and len(parts) == 3 and parts[2] == "versions":
                    request = self.body()
                    if request.get("schemaType", "AVRO") != "AVRO" or request.get("references"):
                        return self.error(422, 42201, "the stand-in takes Avro schemas without references")
                    return self.answer(200, {"id": store.register(subject, request["schema"])})
                if method == "POST" and len(parts) == 2:
                    if subject not in store.subjects:
                        return self.error(404, 40401, "Subject not found")
                    found = store.lookup(subject, self.body()["schema"])
                    return self.answer(200, found) if found else self.error(404, 40403, "Schema not found")
                if method == "GET" and len(parts) == 3 and parts[2] == "versions":
                    if subject not in store.subjects:
                        return self.error(404, 40401, "Subject not found")
                    return self.answer(200, list(range(1, len(store.subjects[subject]) + 1)))
                if method == "GET" and len(parts) == 4 and parts[2] == "versions":
                    versions = store.subjects.get(subject)
                    if not versions:
                        return self.error(404, 40401, "Subject not found")
                    version = len(versions) if parts[3] in ("latest", "-1") else int(parts[3])
                    if not 1 <= version <= len(versions):
                        return self.error(404, 40402, "Version not found")
                    return self.answer(200, store.version_record(subject, version))
            if parts and parts[0] == "config" and len(parts) <= 2:
                subject = parts[1] if len(parts) == 2 else ""
                if method == "PUT":
                    level = self.body()["compatibility"]
                    with store.lock:
                        store.config[subject] = level
                        store.save()
                    return self.answer(200, {"compatibility": level})
                if method == "GET":
                    level = store.config.get(subject)
                    if level is None:
                        # As Confluent's: a subject without its own level is a 404.
                        return self.error(404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured")
                    return self.answer(200, {"compatibilityLevel": level})
        except (ValueError, KeyError) as error:
            return self.error(422, 42201, f"invalid request: {error}")
        return self.error(404, 404, f"the stand-in does not serve {method} {self.path}")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--first-id", type=int, default=57)
    parser.add_argument("--user")
    parser.add_argument("--password-file")
    parser.add_argument("--state", help="a JSON file the store is kept in across restarts")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args()
    Handler.store = Store(args.first_id, args.state)
    if args.user:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().strip()
        token = base64.b64encode(f"{args.user}:{password}".encode()).decode()
        Handler.credentials = f"Basic {token}"
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    if args.certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.certfile, args.keyfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
