#!/usr/bin/env python3
"""Sends invoice lines to distans the way a region's billing system would:
Confluent's Python client (confluent-kafka) with its AvroSerializer and a
schema registry. See docs/producer-contract.md.

    pip install "confluent-kafka[avro,schemaregistry]"
    python produce_invoice_lines.py --bootstrap kafka:9092 \\
        --registry https://registry:8081 --lines 3

Each line is keyed by its identity, "<invoice_id>:<line_number>", so every
version of a line lands on one partition in the order it was sent. The
value is in the Confluent wire format: the serializer registers the schema
under the subject "<topic>-value" (TopicNameStrategy) and frames each record
with the id the registry assigned. The end-to-end test
(tests/tests/registry.rs) runs this file.
"""

import argparse
import datetime
import os
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(HERE, "..", "..", "schemas", "invoice_line.v1.avsc")


def invoice_line(counter, line_number, external_reference=None):
    """One valid invoice line (type 380): a physician's video contact.

    Amounts are öre (1/100 SEK), never negative; dates are datetime.date,
    the visit time a datetime.time (Swedish local time, no zone).
    """
    line = {
        # ZVF + seller org number + YYMM + a 6-digit counter: the national
        # numbering; any 1-35 printable characters are accepted.
        "invoice_id": f"ZVF23210001152503{counter:06d}",
        "invoice_type": "380",
        "line_number": line_number,
        "credited_invoice_id": None,
        "seller_org_number": "2321000115",
        "buyer_org_number": "2321000198",
        "invoice_date": datetime.date(2025, 3, 31),
        "payable_amount_ore": 50_000,
        # A personnummer (YYYYMMDDNNNN, Luhn check digit); test data.
        "patient_id": "198112189876",
        "patient_county_code": "23",
        "patient_municipality_code": "2380",
        "patient_sex": 1,
        "remittance_number": "R-77",
        "agreement_chapter": "4",
        "agreement_point": "4.1",
        "care_type": "outpatient",
        "visit_type": "new",
        "visit_date": datetime.date(2025, 3, 2),
        "visit_time": datetime.time(14, 5),
        "performing_unit_hsa_id": "SE2321000115-094882",
        "provider_org_number": "5567000004",
        "provider_name": "Exempel Digital Vård AB",
        "profession_code": "LK",
        "product_category": "04",
        "quantity": 1,
        "unit_price_ore": 50_000,
        "patient_fee_ore": 0,
        "gross_amount_ore": 50_000,
        "net_amount_ore": 50_000,
        "diagnosis_codes": ["J06.9"],
        "procedure_codes": ["ZV051"],
        "contact_channel": "video",
        "needs_assessment": True,
    }
    if external_reference is not None:
        line["external_reference"] = external_reference
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port")
    parser.add_argument("--registry", required=True, help="schema registry URL")
    parser.add_argument("--registry-user", default=os.environ.get("REGISTRY_USER"))
    parser.add_argument("--registry-password-file", help="file holding the registry password")
    parser.add_argument("--registry-ca", help="PEM CA file for an https registry")
    parser.add_argument("--topic", default="invoice-lines")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="the Avro schema to write with")
    parser.add_argument("--lines", type=int, default=1)
    parser.add_argument("--first-counter", type=int, default=1, help="invoice counter of the first line")
    parser.add_argument("--external-reference", help="a value for a schema's external_reference field")
    args = parser.parse_args()

    registry_conf = {"url": args.registry}
    if args.registry_user:
        with open(args.registry_password_file, encoding="utf-8") as f:
            registry_conf["basic.auth.user.info"] = f"{args.registry_user}:{f.read().strip()}"
    if args.registry_ca:
        registry_conf["ssl.ca.location"] = args.registry_ca
    registry = SchemaRegistryClient(registry_conf)
    with open(args.schema, encoding="utf-8") as f:
        schema = f.read()
    serialize_value = AvroSerializer(registry, schema)
    serialize_key = StringSerializer("utf_8")

    # acks=all: a line counts as sent once every in-sync replica has it.
    # murmur2_random: the key is hashed as Java's and kafkajs' clients hash it,
    # so a line's versions share a partition whichever of them sends it.
    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "partitioner": "murmur2_random"})
    failures = []

    def delivered(error, message):
        if error is not None:
            failures.append(f"{message.key()}: {error}")

    for i in range(args.lines):
        line = invoice_line(args.first_counter + i, 1, args.external_reference)
        key = f"{line['invoice_id']}:{line['line_number']}"
        value = serialize_value(line, SerializationContext(args.topic, MessageField.VALUE))
        producer.produce(args.topic, key=serialize_key(key), value=value, on_delivery=delivered)
        producer.poll(0)
    remaining = producer.flush(30)
    if failures or remaining:
        print(f"not delivered: {failures}, {remaining} unacknowledged", file=sys.stderr)
        return 1
    schema_id = int.from_bytes(value[1:5], "big")
    print(f"sent {args.lines} lines to {args.topic} with schema id {schema_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
