-- Reference data, so that reports and BI tools show names, not codes. The
-- sink writes the rows at every start (from the code's tables and the
-- tariffs in config); the newest version of each row wins.
CREATE TABLE IF NOT EXISTS ref_counties
(
    county_code String,
    name String,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY county_code;

CREATE TABLE IF NOT EXISTS ref_professions
(
    profession_code String,
    label_sv String,
    label_en String,
    tariff_class String,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY profession_code;

-- Tariffs with validity dates; valid_to 2149-06-06 (the last Date) when open.
CREATE TABLE IF NOT EXISTS ref_tariffs
(
    tariff_class String,
    valid_from Date,
    valid_to Date,
    amount_ore Int64,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (tariff_class, valid_from);
