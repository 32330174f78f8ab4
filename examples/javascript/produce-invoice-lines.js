#!/usr/bin/env node
// Sends invoice lines to distans the way a region's billing system would:
// kafkajs and @kafkajs/confluent-schema-registry with a schema registry.
// See docs/producer-contract.md.
//
//   npm install
//   node produce-invoice-lines.js --bootstrap kafka:9092 --registry https://registry:8081 --lines 3
//
// Each line is keyed by its identity, "<invoice_id>:<line_number>", so every
// version of a line lands on one partition in the order it was sent. The
// value is in the Confluent wire format: the schema is registered under the
// subject "<topic>-value" (TopicNameStrategy) and each record is framed with
// the id the registry assigned. The end-to-end test (tests/tests/registry.rs)
// runs this file.
'use strict'

const fs = require('fs')
const path = require('path')
const { parseArgs } = require('util')
const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType, COMPATIBILITY } = require('@kafkajs/confluent-schema-registry')

const DAY_MS = 24 * 60 * 60 * 1000

// Avro's date is days since 1970-01-01 and time-millis milliseconds since
// midnight; avsc (under the registry client) writes them as plain ints.
const days = (isoDate) => Date.parse(`${isoDate}T00:00:00Z`) / DAY_MS
const millisOfDay = (hours, minutes) => (hours * 60 + minutes) * 60 * 1000

// One valid invoice line (type 380): a physician's video contact. Amounts are
// öre (1/100 SEK), never negative. Optional fields are Avro unions with null:
// avsc takes the value itself (or null) for ["null", T].
function invoiceLine (counter, lineNumber) {
  return {
    // ZVF + seller org number + YYMM + a 6-digit counter: the national
    // numbering; any 1-35 printable characters are accepted.
    invoice_id: `ZVF23210001152503${String(counter).padStart(6, '0')}`,
    invoice_type: '380',
    line_number: lineNumber,
    credited_invoice_id: null,
    seller_org_number: '2321000115',
    buyer_org_number: '2321000198',
    invoice_date: days('2025-03-31'),
    payable_amount_ore: 50000,
    // A personnummer (YYYYMMDDNNNN, Luhn check digit); test data.
    patient_id: '198112189876',
    patient_county_code: '23',
    patient_municipality_code: '2380',
    patient_sex: 2,
    remittance_number: null,
    agreement_chapter: '4',
    agreement_point: '4.1',
    care_type: 'outpatient',
    visit_type: 'return',
    visit_date: days('2025-03-03'),
    visit_time: millisOfDay(9, 30),
    performing_unit_hsa_id: 'SE2321000115-094882',
    provider_org_number: '5567000004',
    provider_name: 'Exempel Digital Vård AB',
    profession_code: 'SJ',
    product_category: '04',
    quantity: 1,
    unit_price_ore: 50000,
    patient_fee_ore: 0,
    gross_amount_ore: 50000,
    net_amount_ore: 50000,
    diagnosis_codes: [],
    procedure_codes: ['ZV051'],
    contact_channel: 'chat',
    needs_assessment: null
  }
}

async function main () {
  const { values: args } = parseArgs({
    options: {
      bootstrap: { type: 'string' },
      registry: { type: 'string' },
      'registry-user': { type: 'string' },
      'registry-password-file': { type: 'string' },
      topic: { type: 'string', default: 'invoice-lines' },
      schema: { type: 'string', default: path.join(__dirname, '..', '..', 'schemas', 'invoice_line.v1.avsc') },
      lines: { type: 'string', default: '1' },
      'first-counter': { type: 'string', default: '1' }
    }
  })
  if (!args.bootstrap || !args.registry) throw new Error('--bootstrap and --registry are required')

  const auth = args['registry-user']
    ? { username: args['registry-user'], password: fs.readFileSync(args['registry-password-file'], 'utf8').trim() }
    : undefined
  const registry = new SchemaRegistry({ host: args.registry, auth })
  const subject = `${args.topic}-value`
  // The client checks the subject's compatibility level before registering;
  // distans' input subject is FULL_TRANSITIVE (`distans schemas register`).
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: fs.readFileSync(args.schema, 'utf8') },
    { subject, compatibility: COMPATIBILITY.FULL_TRANSITIVE }
  )

  const kafka = new Kafka({ clientId: 'distans-example', brokers: args.bootstrap.split(','), logLevel: logLevel.WARN })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    const messages = []
    const first = Number(args['first-counter'])
    for (let i = 0; i < Number(args.lines); i++) {
      const line = invoiceLine(first + i, 1)
      messages.push({ key: `${line.invoice_id}:${line.line_number}`, value: await registry.encode(id, line) })
    }
    // acks -1: a line counts as sent once every in-sync replica has it.
    await producer.send({ topic: args.topic, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }
  console.log(`sent ${args.lines} lines to ${args.topic} with schema id ${id}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
