-- Rebuilds one visit month of agg_monthly into {staging}, a table made
-- for this rebuild alone (the sink then moves it with REPLACE PARTITION).
-- {month} is the first day of the month, 'YYYY-MM-DD'. Lines come as the
-- latest version of each line identity (largest version, then latest
-- inserted_at: what the ReplacingMergeTree keeps) whose visit is in the
-- month, read without FINAL from the identities with a version in the
-- month; each line gets
-- the listing valid on its visit date (latest import of its home region),
-- the cost allocation valid on its visit date, and whether any finding
-- names it. Credit notes count negative. Runs on ClickHouse 18.16 and
-- current releases: one JOIN per SELECT level, lambdas take every column
-- they read as an argument.
INSERT INTO {staging}
SELECT
    month,
    buyer_org_number,
    home_county,
    listing_unit_hsa_id,
    listing_unit_name,
    listing_provider_group,
    provider_org_number,
    any(provider_name),
    profession_code,
    initiative,
    age_group,
    sex,
    diagnosis_chapter,
    sum(sign * toInt64(quantity)),
    count(),
    uniqExactState(patient_pseudonym),
    sum(sign * gross_amount_ore),
    sum(signed_net_amount_ore),
    sum(sign * patient_fee_ore),
    sum(health_centre_ore),
    sum(signed_net_amount_ore - health_centre_ore),
    sum(if(flagged = 1, sign * toInt64(quantity), 0)),
    sum(if(flagged = 1, signed_net_amount_ore, 0)),
    sum(flagged),
    now()
FROM
(
    SELECT
        *,
        arrayFirstIndex((f, t, d) -> f <= d AND d <= t, alloc_from, alloc_to,
            arrayResize([visit_date], length(alloc_from), visit_date)) AS allocation,
        if(listing_unit_hsa_id = '' OR allocation = 0, 0,
            intDiv(signed_net_amount_ore * alloc_percent[allocation], 100)) AS health_centre_ore
    FROM
    (
        SELECT *
        FROM
        (
            SELECT
                *,
                if(listing = 0, '', list_unit[listing]) AS listing_unit_hsa_id,
                if(listing = 0, '', list_name[listing]) AS listing_unit_name,
                if(listing = 0, '', list_group[listing]) AS listing_provider_group
            FROM
            (
                SELECT
                    *,
                    arrayFirstIndex((f, t, d) -> f <= d AND d <= t, list_from, list_to,
                        arrayResize([visit_date], length(list_from), visit_date)) AS listing
                FROM
                (
                    SELECT
                        toStartOfMonth(visit_date) AS month,
                        visit_date,
                        buyer_org_number,
                        patient_county_code AS home_county,
                        patient_pseudonym,
                        provider_org_number,
                        provider_name,
                        profession_code,
                        initiative,
                        age_group,
                        sex,
                        if(empty(diagnosis_codes), '', multiIf(
                            substring(diagnosis_codes[1], 1, 3) < 'C00', 'I',
                            substring(diagnosis_codes[1], 1, 3) < 'D50', 'II',
                            substring(diagnosis_codes[1], 1, 3) < 'E00', 'III',
                            substring(diagnosis_codes[1], 1, 3) < 'F00', 'IV',
                            substring(diagnosis_codes[1], 1, 3) < 'G00', 'V',
                            substring(diagnosis_codes[1], 1, 3) < 'H00', 'VI',
                            substring(diagnosis_codes[1], 1, 3) < 'H60', 'VII',
                            substring(diagnosis_codes[1], 1, 3) < 'I00', 'VIII',
                            substring(diagnosis_codes[1], 1, 3) < 'J00', 'IX',
                            substring(diagnosis_codes[1], 1, 3) < 'K00', 'X',
                            substring(diagnosis_codes[1], 1, 3) < 'L00', 'XI',
                            substring(diagnosis_codes[1], 1, 3) < 'M00', 'XII',
                            substring(diagnosis_codes[1], 1, 3) < 'N00', 'XIII',
                            substring(diagnosis_codes[1], 1, 3) < 'O00', 'XIV',
                            substring(diagnosis_codes[1], 1, 3) < 'P00', 'XV',
                            substring(diagnosis_codes[1], 1, 3) < 'Q00', 'XVI',
                            substring(diagnosis_codes[1], 1, 3) < 'R00', 'XVII',
                            substring(diagnosis_codes[1], 1, 3) < 'S00', 'XVIII',
                            substring(diagnosis_codes[1], 1, 3) < 'U00', 'XIX',
                            substring(diagnosis_codes[1], 1, 3) < 'V00', 'XXII',
                            substring(diagnosis_codes[1], 1, 3) < 'Z00', 'XX',
                            'XXI')) AS diagnosis_chapter,
                        if(invoice_type = 'credit_note', -1, 1) AS sign,
                        quantity,
                        gross_amount_ore,
                        patient_fee_ore,
                        signed_net_amount_ore,
                        concat(invoice_id, ':', toString(line_number)) AS line_key
                    FROM
                    -- latest lines: begin (the reference refresh,
                    -- aggregates::refresh_month_final, reads
                    -- invoice_line_versions FINAL in their place)
                    (
                        -- The latest version of each identity with any
                        -- version in the month (phase 1 reads only the key
                        -- and visit_date), kept below when that latest
                        -- version's visit is in the month. Not FINAL: that
                        -- merges every part of the whole (unpartitioned)
                        -- table in memory.
                        SELECT *
                        FROM invoice_line_versions
                        PREWHERE (seller_org_number, invoice_id, line_number) IN
                        (
                            SELECT seller_org_number, invoice_id, line_number
                            FROM invoice_line_versions
                            PREWHERE toStartOfMonth(visit_date) = toDate('{month}')
                        )
                        ORDER BY version DESC, inserted_at DESC
                        LIMIT 1 BY seller_org_number, invoice_id, line_number
                    ) AS latest
                    -- latest lines: end
                    WHERE toStartOfMonth(visit_date) = toDate('{month}')
                ) AS line
                ANY LEFT JOIN
                (
                    SELECT
                        home_county,
                        patient_pseudonym,
                        groupArray(valid_from) AS list_from,
                        groupArray(valid_to) AS list_to,
                        groupArray(unit_hsa_id) AS list_unit,
                        groupArray(unit_name) AS list_name,
                        groupArray(provider_group) AS list_group
                    FROM listing_current
                    WHERE (home_county, patient_pseudonym) IN
                    (
                        SELECT patient_county_code, patient_pseudonym
                        FROM invoice_line_versions
                        WHERE toStartOfMonth(visit_date) = toDate('{month}')
                    )
                    GROUP BY home_county, patient_pseudonym
                ) AS listed USING (home_county, patient_pseudonym)
            ) AS with_listing
        ) AS listed_line
        ANY LEFT JOIN
        (
            SELECT line_key, toUInt8(1) AS flagged
            FROM findings_active
            GROUP BY line_key
        ) AS finding USING (line_key)
    ) AS flagged_line
    ANY LEFT JOIN
    (
        SELECT
            home_county,
            groupArray(valid_from) AS alloc_from,
            groupArray(valid_to) AS alloc_to,
            groupArray(health_centre_percent) AS alloc_percent
        FROM ref_cost_allocation_current
        GROUP BY home_county
    ) AS cost_share USING (home_county)
) AS allocated_line
GROUP BY
    month, buyer_org_number, home_county, listing_unit_hsa_id, listing_unit_name, listing_provider_group,
    provider_org_number, profession_code, initiative, age_group, sex, diagnosis_chapter
