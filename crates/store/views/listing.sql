-- The listing register (tables in migration 0005).

-- The latest complete import of each home region.
CREATE VIEW listing_current AS
SELECT *
FROM listing_register
WHERE (home_county, import_id) IN (SELECT home_county, max(import_id) FROM listing_imports GROUP BY home_county);
