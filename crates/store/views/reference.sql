-- The reference data of the latest load (tables in migrations 0004, 0005).

-- The tariffs of the latest load: an entry removed from config is gone here.
CREATE VIEW ref_tariffs_current AS
SELECT tariff_class, valid_from, valid_to, amount_ore
FROM ref_tariffs
WHERE loaded_at = (SELECT max(loaded_at) FROM ref_tariffs);

CREATE VIEW ref_cost_allocation_current AS
SELECT home_county, valid_from, valid_to, health_centre_percent
FROM ref_cost_allocation
WHERE loaded_at = (SELECT max(loaded_at) FROM ref_loads);

CREATE VIEW ref_provider_groups_current AS
SELECT provider_org_number, provider_group
FROM ref_provider_groups
WHERE loaded_at = (SELECT max(loaded_at) FROM ref_loads);

-- The home regions' names of the latest load (migration 0010).
CREATE VIEW ref_regions_current AS
SELECT buyer_org_number, county_code, name
FROM ref_regions
WHERE loaded_at = (SELECT max(loaded_at) FROM ref_loads);
