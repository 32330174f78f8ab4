-- Valid, pseudonymised invoice lines, one row per line as the ingester passed it on.
-- A line delivered twice (a redelivery after a crash, or a file sent again) is
-- written twice; the ReplacingMergeTree keeps the newest row per (buyer, invoice
-- id, line number), and every report reads through FINAL or the
-- invoice_lines_current view, so a line never counts twice. Rows collapse only
-- within a partition, so the partition comes from the key itself: the YYMM in
-- the invoice id (ZVF + 10-digit org number + YYMM + counter), which the
-- ingester checks.
CREATE TABLE IF NOT EXISTS invoice_lines
(
    invoice_id String,
    line_number UInt32,
    invoice_type String,
    credited_invoice_id Nullable(String),
    seller_org_number String,
    buyer_org_number String,
    invoice_date Date,
    patient_pseudonym String,
    patient_id_kind String,
    patient_county_code String,
    patient_municipality_code String,
    sex String,
    age_years Nullable(UInt8),
    age_group String,
    initiative String,
    remittance_number Nullable(String),
    agreement_chapter String,
    agreement_point String,
    care_type String,
    visit_type String,
    visit_date Date,
    visit_time_ms Nullable(UInt32),
    performing_unit_hsa_id String,
    provider_org_number String,
    provider_name String,
    profession_code String,
    tariff_class String,
    tariff_ore Nullable(Int64),
    product_category String,
    quantity UInt32,
    unit_price_ore Int64,
    patient_fee_ore Int64,
    gross_amount_ore Int64,
    net_amount_ore Int64,
    signed_net_amount_ore Int64,
    diagnosis_codes Array(String),
    procedure_codes Array(String),
    contact_channel Nullable(String),
    needs_assessment Nullable(UInt8),
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    ingested_at DateTime,
    inserted_at DateTime
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY substring(invoice_id, 14, 4)
ORDER BY (buyer_org_number, invoice_id, line_number);
