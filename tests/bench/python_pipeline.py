"""The plain Python pipeline of `make bench`: what a user would write instead
of distans, as issue 15 defines it. Reads the input topic (Confluent wire
format: magic byte 0, 4-byte big-endian schema id, Avro datum), decodes each
record with fastavro, replaces the patient id with HMAC-SHA-256 (128 bits as
hex, as distans' Pseudonymiser), and inserts the lines into ClickHouse with
clickhouse-driver (native protocol) in inserts of --batch rows, committing
the consumer's offsets after each insert. No validation, no enrichment.

Prints one JSON object per line on stdout, flushed at once, so the bench can
time the window and sample the broker's and ClickHouse's CPU beside it:
  {"event": "first"}  when the first record arrived;
  {"event": "done", "lines": N, "seconds": S, "cpu_seconds": C,
   "peak_rss_kib": K}  once N records are in ClickHouse (S and C from the
   first record to the last insert's acknowledgement; K the process's peak
   resident memory).
Exits non-zero, saying why, on any error or when --timeout passes.
"""

import argparse
import hashlib
import hmac
import io
import json
import resource
import struct
import sys
import time

import fastavro
from clickhouse_driver import Client
from confluent_kafka import Consumer, KafkaException

# ClickHouse's type for each Avro type of the invoice line schema, and the
# two columns named otherwise than their field (row() converts them).
CLICKHOUSE_TYPES = {
    "string": "String",
    "int": "Int32",
    "long": "Int64",
    "boolean": "UInt8",
    "date": "Date",
    "time-millis": "Int32",
}
RENAMED = {"patient_id": "patient_pseudonym", "visit_time": "visit_time_ms"}


def clickhouse_type(avro_type):
    if isinstance(avro_type, list):  # a union with null
        (inner,) = [t for t in avro_type if t != "null"]
        return f"Nullable({clickhouse_type(inner)})"
    if isinstance(avro_type, dict):
        if avro_type["type"] == "array":
            return f"Array({clickhouse_type(avro_type['items'])})"
        return CLICKHOUSE_TYPES[avro_type.get("logicalType", avro_type["type"])]
    return CLICKHOUSE_TYPES[avro_type]


def columns(schema):
    """The table's columns for the records of `schema` (the .avsc as JSON),
    in the order of its fields, as row() lists the values."""
    return ", ".join(f"{RENAMED.get(f['name'], f['name'])} {clickhouse_type(f['type'])}" for f in schema["fields"])


def emit(**fields):
    print(json.dumps(fields), flush=True)


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def millis(t):
    if t is None:
        return None
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def row(record, key):
    pseudonym = hmac.new(key, record["patient_id"].encode(), hashlib.sha256).hexdigest()[:32]
    needs = record["needs_assessment"]
    return (
        record["invoice_id"],
        record["invoice_type"],
        record["line_number"],
        record["credited_invoice_id"],
        record["seller_org_number"],
        record["buyer_org_number"],
        record["invoice_date"],
        record["payable_amount_ore"],
        pseudonym,
        record["patient_county_code"],
        record["patient_municipality_code"],
        record["patient_sex"],
        record["remittance_number"],
        record["agreement_chapter"],
        record["agreement_point"],
        record["care_type"],
        record["visit_type"],
        record["visit_date"],
        millis(record["visit_time"]),
        record["performing_unit_hsa_id"],
        record["provider_org_number"],
        record["provider_name"],
        record["profession_code"],
        record["product_category"],
        record["quantity"],
        record["unit_price_ore"],
        record["patient_fee_ore"],
        record["gross_amount_ore"],
        record["net_amount_ore"],
        record["diagnosis_codes"],
        record["procedure_codes"],
        record["contact_channel"],
        None if needs is None else int(needs),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--clickhouse-port", type=int, required=True, help="native protocol port")
    parser.add_argument("--database", required=True)
    parser.add_argument("--schema", required=True, help="the writer schema (.avsc)")
    parser.add_argument("--schema-id", type=int, required=True)
    parser.add_argument("--key-file", required=True, help="the pseudonymisation key")
    parser.add_argument("--lines", type=int, required=True, help="records to read, then stop")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--fetch-wait-max-ms", type=int, default=500, help="the consumer's fetch.wait.max.ms")
    args = parser.parse_args()

    with open(args.schema) as f:
        schema_json = json.load(f)
    schema = fastavro.parse_schema(schema_json)
    with open(args.key_file, "rb") as f:
        key = f.read()
    clickhouse = Client(host="127.0.0.1", port=args.clickhouse_port)
    clickhouse.execute(f"CREATE DATABASE IF NOT EXISTS {args.database}")
    clickhouse.execute(f"DROP TABLE IF EXISTS {args.database}.lines")
    clickhouse.execute(
        f"CREATE TABLE {args.database}.lines ({columns(schema_json)}) ENGINE = MergeTree "
        "ORDER BY (seller_org_number, invoice_id, line_number)"
    )
    insert = f"INSERT INTO {args.database}.lines VALUES"

    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": args.fetch_wait_max_ms,
        }
    )
    consumer.subscribe([args.topic])
    deadline = time.monotonic() + args.timeout
    header = struct.Struct(">bI")
    rows, done = [], 0
    started = cpu_started = None
    try:
        while done < args.lines:
            if time.monotonic() > deadline:
                sys.exit(f"timed out after {args.timeout} s: {done + len(rows)} of {args.lines} records read")
            messages = consumer.consume(num_messages=1000, timeout=0.5)
            if messages and started is None:
                started, cpu_started = time.monotonic(), cpu_seconds()
                emit(event="first")
            for message in messages:
                if message.error():
                    raise KafkaException(message.error())
                value = message.value()
                magic, schema_id = header.unpack_from(value)
                if magic != 0 or schema_id != args.schema_id:
                    sys.exit(f"record at offset {message.offset()}: magic {magic}, schema id {schema_id}")
                record = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)
                rows.append(row(record, key))
            if len(rows) >= args.batch or (rows and done + len(rows) >= args.lines):
                clickhouse.execute(insert, rows)
                done += len(rows)
                rows = []
                consumer.commit(asynchronous=True)
        seconds = time.monotonic() - started
        emit(
            event="done",
            lines=done,
            seconds=seconds,
            cpu_seconds=cpu_seconds() - cpu_started,
            peak_rss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        )
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
