-- Every version of every invoice line, keyed by the line's identity alone
-- (distans_domain::rules::LineIdentity): the seller's organisation number,
-- the seller's invoice id and the line number. The buyer, the dates and the
-- amounts are attributes a correction may change; in invoice_lines (0001)
-- the buyer was part of the key, so a line re-sent with a corrected buyer
-- counted twice.
--
-- version is the offset of the line's record on its input partition
-- (source_offset). Producers key records by line (invoice id : line
-- number), so every version of a line is on one partition, in the order
-- the seller sent them, and a later version has a larger offset. The input
-- offset, not the valid topic's: a record processed again after a crash or
-- redelivered keeps its input offset, so an old version written late never
-- passes a newer one; a redelivery has the same version and collapses with
-- itself. The ReplacingMergeTree keeps the row with the largest version of
-- each identity; readers read through FINAL (invoice_lines_current).
--
-- Not partitioned: rows collapse only within a partition, so the partition
-- must be a function of the identity alone. One partition is that, needs no
-- hash function to stay the same across releases, and gives each insert one
-- part (the sink's batches are small). A region's year is 25-100 k lines, a
-- national year about 3 M: one partition holds years of that.
CREATE TABLE IF NOT EXISTS invoice_line_versions
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
    inserted_at DateTime,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (seller_org_number, invoice_id, line_number);

-- The lines written before this migration, every stored row of them. Rows
-- of one identity collapse to the latest version here, whatever their buyer
-- was. Run again (a migration interrupted before it was recorded), the copy
-- adds rows equal in key and version to those already copied: they collapse
-- too. From this migration on the sink writes invoice_line_versions only;
-- invoice_lines stays as it was at the copy, read by nothing.
INSERT INTO invoice_line_versions
(
    invoice_id, line_number, invoice_type, credited_invoice_id, seller_org_number, buyer_org_number,
    invoice_date, patient_pseudonym, patient_id_kind, patient_county_code, patient_municipality_code, sex,
    age_years, age_group, initiative, remittance_number, agreement_chapter, agreement_point, care_type,
    visit_type, visit_date, visit_time_ms, performing_unit_hsa_id, provider_org_number, provider_name,
    profession_code, tariff_class, tariff_ore, product_category, quantity, unit_price_ore, patient_fee_ore,
    gross_amount_ore, net_amount_ore, signed_net_amount_ore, diagnosis_codes, procedure_codes,
    contact_channel, needs_assessment, source_topic, source_partition, source_offset, ingested_at,
    inserted_at, version
)
SELECT
    invoice_id, line_number, invoice_type, credited_invoice_id, seller_org_number, buyer_org_number,
    invoice_date, patient_pseudonym, patient_id_kind, patient_county_code, patient_municipality_code, sex,
    age_years, age_group, initiative, remittance_number, agreement_chapter, agreement_point, care_type,
    visit_type, visit_date, visit_time_ms, performing_unit_hsa_id, provider_org_number, provider_name,
    profession_code, tariff_class, tariff_ore, product_category, quantity, unit_price_ore, patient_fee_ore,
    gross_amount_ore, net_amount_ore, signed_net_amount_ore, diagnosis_codes, procedure_codes,
    contact_channel, needs_assessment, source_topic, source_partition, source_offset, ingested_at,
    inserted_at, toUInt64(source_offset)
FROM invoice_lines;
