-- The home regions' names, for reports and the Grafana region selector:
-- each organisation number of detector.rules.home_regions with its county
-- and the region's name (distans_domain::codes::REGION_NAMES), written by
-- the sink at start like the other reference tables (0004, 0005).
CREATE TABLE IF NOT EXISTS ref_regions
(
    buyer_org_number String,
    county_code String,
    name String,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY buyer_org_number;
