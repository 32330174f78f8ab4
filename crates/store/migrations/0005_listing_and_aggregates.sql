-- The home region's listing register, imported with `distans listing import`.
-- Every import is a version: its rows carry the import id, and the import is
-- recorded in listing_imports only after all its rows are written, so a
-- half-written import is never current. Patients are pseudonyms (the
-- ingester's key), never personnummer.
CREATE TABLE IF NOT EXISTS listing_imports
(
    import_id UInt64,
    home_county String,
    file_name String,
    file_sha256 String,
    rows UInt64,
    patients UInt64,
    units UInt64,
    imported_at DateTime
)
ENGINE = MergeTree
ORDER BY (home_county, import_id);

-- One row per listing period; valid_to 2149-06-06 (the last Date) when open.
-- birth_year and sex come from the personnummer when the register is
-- imported in clear text, and are unknown (NULL, 'unknown') otherwise.
CREATE TABLE IF NOT EXISTS listing_register
(
    import_id UInt64,
    home_county String,
    patient_pseudonym String,
    unit_hsa_id String,
    unit_name String,
    unit_provider_org_number String,
    provider_group String,
    birth_year Nullable(UInt16),
    sex String,
    valid_from Date,
    valid_to Date
)
ENGINE = MergeTree
PARTITION BY import_id
ORDER BY (home_county, patient_pseudonym, valid_from);

-- Cost allocation per home region (config `[[reporting.cost_allocation]]`,
-- written by the sink at start): the share of a listed patient's cost that
-- the listing health centre carries; the region carries the rest centrally.
-- A region or date without an entry, and every unlisted patient, is central.
CREATE TABLE IF NOT EXISTS ref_cost_allocation
(
    home_county String,
    valid_from Date,
    valid_to Date,
    health_centre_percent UInt8,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (home_county, valid_from);

-- Every load of the reference data from config, so that a list emptied in
-- config is empty in the *_current views too.
CREATE TABLE IF NOT EXISTS ref_loads
(
    loaded_at DateTime
)
ENGINE = MergeTree
ORDER BY loaded_at;

-- Digital providers' groups (config `reporting.provider_groups`).
CREATE TABLE IF NOT EXISTS ref_provider_groups
(
    provider_org_number String,
    provider_group String,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY provider_org_number;

-- Parameters of the checks made in views (config `reporting.peer_*`).
CREATE TABLE IF NOT EXISTS ref_parameters
(
    name String,
    value Float64,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY name;

-- Municipality names (distans_domain::codes::MUNICIPALITY_NAMES).
CREATE TABLE IF NOT EXISTS ref_municipalities
(
    municipality_code String,
    name String,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY municipality_code;

-- ICD-10 chapters (titles for reports); lines are put in a chapter by the
-- first three characters of their first diagnosis code (see refresh SQL).
CREATE TABLE IF NOT EXISTS ref_icd10_chapters
(
    chapter String,
    first_code String,
    last_code String,
    title_sv String,
    title_en String,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY chapter;

-- Monthly aggregates by visit month and every reporting dimension. Not a
-- materialized view: a view fed by inserts would sum every inserted row, and
-- invoice_lines receives a line again after a redelivery or a corrected
-- file, and a new listing register changes which health centre past lines
-- belong to. The sink rebuilds the months whose lines, findings or reference
-- data changed (crates/sink/sql/refresh_month.sql) from the deduplicated
-- lines, in agg_monthly_staging, and swaps the month in with REPLACE
-- PARTITION, so readers see a month either before or after, never half.
CREATE TABLE IF NOT EXISTS agg_monthly
(
    month Date,
    buyer_org_number String,
    home_county String,
    listing_unit_hsa_id String,
    listing_unit_name String,
    listing_provider_group String,
    provider_org_number String,
    provider_name String,
    profession_code String,
    initiative String,
    age_group String,
    sex String,
    diagnosis_chapter String,
    contacts Int64,
    lines UInt64,
    patients AggregateFunction(uniqExact, String),
    gross_amount_ore Int64,
    net_amount_ore Int64,
    patient_fee_ore Int64,
    health_centre_ore Int64,
    central_ore Int64,
    flagged_contacts Int64,
    flagged_net_ore Int64,
    flagged_lines UInt64,
    refreshed_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(month)
ORDER BY (buyer_org_number, month, listing_unit_hsa_id, provider_org_number, profession_code);

CREATE TABLE IF NOT EXISTS agg_monthly_staging AS agg_monthly;

-- When each month was last rebuilt, and from how many lines.
CREATE TABLE IF NOT EXISTS agg_refreshes
(
    month Date,
    lines UInt64,
    refreshed_at DateTime
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY month;
