-- One view per question the regions ask (seeds), over agg_monthly (rebuilt
-- from the deduplicated lines) unless said. Amounts in öre, credit notes
-- netted. The report panels (crates/store/src/panels.rs) select from these
-- views, so the terminal report, the HTML report and Grafana cannot disagree.

-- Cost and contacts per month, and the same month a year earlier.
CREATE VIEW report_cost_by_month AS
SELECT
    buyer_org_number,
    month,
    toUInt16(toYear(month)) AS year,
    contacts,
    patients,
    net_amount_ore,
    patient_fee_ore,
    flagged_net_ore,
    contacts_last_year,
    net_last_year_ore,
    if(net_last_year_ore = 0, NULL, round(100 * (net_amount_ore - net_last_year_ore) / net_last_year_ore, 1))
        AS net_growth_percent
FROM
(
    SELECT
        buyer_org_number,
        month,
        sum(contacts) AS contacts,
        uniqExactMerge(patients) AS patients,
        sum(net_amount_ore) AS net_amount_ore,
        sum(patient_fee_ore) AS patient_fee_ore,
        sum(flagged_net_ore) AS flagged_net_ore
    FROM agg_monthly
    GROUP BY buyer_org_number, month
) AS this_year
ANY LEFT JOIN
(
    SELECT buyer_org_number, addMonths(earlier_month, 12) AS month, contacts_last_year, net_last_year_ore
    FROM
    (
        SELECT
            buyer_org_number,
            month AS earlier_month,
            sum(contacts) AS contacts_last_year,
            sum(net_amount_ore) AS net_last_year_ore
        FROM agg_monthly
        GROUP BY buyer_org_number, earlier_month
    ) AS by_month
) AS last_year USING (buyer_org_number, month);

-- Cost and contacts per profession, with the profession's name.
CREATE VIEW report_cost_by_profession AS
SELECT
    buyer_org_number,
    year,
    profession_code,
    if(label_en = '', profession_code, label_en) AS profession,
    contacts,
    patients,
    net_amount_ore
FROM
(
    SELECT
        buyer_org_number,
        toUInt16(toYear(month)) AS year,
        profession_code,
        sum(contacts) AS contacts,
        uniqExactMerge(patients) AS patients,
        sum(net_amount_ore) AS net_amount_ore
    FROM agg_monthly
    GROUP BY buyer_org_number, year, profession_code
) AS used
ANY LEFT JOIN
(
    SELECT profession_code, argMax(label_en, loaded_at) AS label_en
    FROM ref_professions
    GROUP BY profession_code
) AS labels USING (profession_code);

-- Referred vs own initiative, per provider and listing health centre
-- ('' = unlisted).
CREATE VIEW report_initiative AS
SELECT
    buyer_org_number,
    toUInt16(toYear(month)) AS year,
    provider_org_number,
    any(provider_name) AS provider,
    listing_unit_hsa_id,
    any(listing_unit_name) AS listing_unit,
    sumIf(contacts, initiative = 'referral') AS referred_contacts,
    sumIf(contacts, initiative = 'own_initiative') AS own_initiative_contacts,
    sumIf(contacts, initiative = 'other') AS other_contacts,
    sum(contacts) AS all_contacts,
    sum(net_amount_ore) AS all_net_amount_ore
FROM agg_monthly
GROUP BY buyer_org_number, year, provider_org_number, listing_unit_hsa_id;

-- Cost per listing health centre, split into what the health centre and the
-- region centrally carry ('' = unlisted: all central, wherever the patient
-- lives).
CREATE VIEW report_cost_by_health_centre AS
SELECT
    buyer_org_number,
    toUInt16(toYear(month)) AS year,
    listing_unit_hsa_id,
    any(listing_unit_name) AS listing_unit,
    sum(contacts) AS contacts,
    uniqExactMerge(patients) AS patients,
    sum(net_amount_ore) AS net_amount_ore,
    sum(health_centre_ore) AS health_centre_ore,
    sum(central_ore) AS central_ore,
    sum(flagged_net_ore) AS flagged_net_ore
FROM agg_monthly
GROUP BY buyer_org_number, year, listing_unit_hsa_id;

-- Listed patients per health centre, age group and sex, on 1 July of each
-- year (the mid-year population; the latest register import). Age from the
-- birth year, so it is the age reached during that year.
CREATE VIEW report_listed_population AS
SELECT
    home_county,
    year,
    unit_hsa_id,
    any(unit_name) AS unit_name,
    multiIf(
        isNull(birth_year), 'unknown',
        year - birth_year <= 6, '0-6',
        year - birth_year <= 18, '7-18',
        year - birth_year <= 39, '19-39',
        year - birth_year <= 64, '40-64',
        year - birth_year <= 74, '65-74',
        year - birth_year <= 84, '75-84',
        '85+') AS age_group,
    sex,
    uniqExact(patient_pseudonym) AS listed
FROM
(
    SELECT
        home_county,
        unit_hsa_id,
        unit_name,
        patient_pseudonym,
        birth_year,
        sex,
        toUInt16(first_year + arrayJoin(range(toUInt32(greatest(last_year - first_year + 1, 0))))) AS year
    FROM
    (
        SELECT
            *,
            toInt32(toYear(valid_from)) + if(toMonth(valid_from) > 7 OR (toMonth(valid_from) = 7 AND toDayOfMonth(valid_from) > 1), 1, 0)
                AS first_year,
            -- An open listing ends on the last Date, which ClickHouse 18.16
            -- cannot take the year of: count up to today.
            least(valid_to, today()) AS until,
            toInt32(toYear(until)) - if(toMonth(until) < 7, 1, 0) AS last_year
        FROM listing_current
    ) AS periods
) AS listed_years
GROUP BY home_county, year, unit_hsa_id, age_group, sex;

-- Contacts per 1 000 listed patients per health centre and year.
CREATE VIEW report_contacts_per_1000_listed AS
SELECT
    buyer_org_number,
    home_county,
    year,
    listing_unit_hsa_id,
    listing_unit,
    contacts,
    net_amount_ore,
    listed,
    if(listed = 0, NULL, round(1000 * contacts / listed, 1)) AS contacts_per_1000_listed
FROM
(
    SELECT
        buyer_org_number,
        home_county,
        toUInt16(toYear(month)) AS year,
        listing_unit_hsa_id,
        any(listing_unit_name) AS listing_unit,
        sum(contacts) AS contacts,
        sum(net_amount_ore) AS net_amount_ore
    FROM agg_monthly
    WHERE listing_unit_hsa_id != ''
    GROUP BY buyer_org_number, home_county, year, listing_unit_hsa_id
) AS used
ANY LEFT JOIN
(
    SELECT home_county, year, unit_hsa_id AS listing_unit_hsa_id, sum(listed) AS listed
    FROM report_listed_population
    GROUP BY home_county, year, listing_unit_hsa_id
) AS population USING (home_county, year, listing_unit_hsa_id);

-- Age group and sex of the patients, against the listed population.
CREATE VIEW report_age_sex AS
SELECT
    buyer_org_number,
    home_county,
    year,
    age_group,
    sex,
    contacts,
    patients,
    net_amount_ore,
    -- The buyer's own county's listed people only (its county from
    -- ref_regions, i.e. detector.rules.home_regions; without one, the
    -- patients' county's): its patients resident in another county must
    -- not bring that county's whole register in.
    if(buyer_county = '' OR home_county = buyer_county, listed, 0) AS listed
FROM
(
    SELECT buyer_org_number, home_county, year, age_group, sex, contacts, patients, net_amount_ore, buyer_county
    FROM
    (
        SELECT
            buyer_org_number,
            home_county,
            toUInt16(toYear(month)) AS year,
            age_group,
            sex,
            sum(contacts) AS contacts,
            uniqExactMerge(patients) AS patients,
            sum(net_amount_ore) AS net_amount_ore
        FROM agg_monthly
        GROUP BY buyer_org_number, home_county, year, age_group, sex
    ) AS used
    ANY LEFT JOIN
    (
        SELECT buyer_org_number, county_code AS buyer_county FROM ref_regions_current
    ) AS regions USING (buyer_org_number)
) AS used
ANY LEFT JOIN
(
    SELECT home_county, year, age_group, sex, sum(listed) AS listed
    FROM report_listed_population
    GROUP BY home_county, year, age_group, sex
) AS population USING (home_county, year, age_group, sex);

-- Diagnosis groups (ICD-10 chapter of the first diagnosis; '' = none given).
CREATE VIEW report_diagnosis_groups AS
SELECT
    buyer_org_number,
    toUInt16(toYear(month)) AS year,
    diagnosis_chapter,
    if(diagnosis_chapter = '', 'no diagnosis given', title_en) AS chapter_title,
    sum(contacts) AS contacts,
    uniqExactMerge(patients) AS patients,
    sum(net_amount_ore) AS net_amount_ore
FROM agg_monthly
ANY LEFT JOIN
(
    SELECT chapter AS diagnosis_chapter, argMax(title_en, loaded_at) AS title_en
    FROM ref_icd10_chapters
    GROUP BY diagnosis_chapter
) AS chapters USING (diagnosis_chapter)
GROUP BY buyer_org_number, year, diagnosis_chapter, chapter_title;

-- Sessions per patient with psychologists, psychotherapists and counsellors
-- (the psychologist tariff class), per provider and visit year; from the
-- lines, since it counts per patient.
CREATE VIEW report_psychologist_sessions AS
SELECT
    buyer_org_number,
    year,
    provider_org_number,
    any(provider_name) AS provider,
    count() AS patients,
    sum(sessions) AS all_sessions,
    round(sum(sessions) / count(), 2) AS sessions_per_patient,
    max(sessions) AS most_sessions_one_patient
FROM
(
    SELECT
        buyer_org_number,
        toUInt16(toYear(visit_date)) AS year,
        provider_org_number,
        any(provider_name) AS provider_name,
        patient_pseudonym,
        sum(if(invoice_type = 'credit_note', -toInt64(quantity), toInt64(quantity))) AS sessions
    FROM invoice_line_versions FINAL
    WHERE tariff_class = 'psychologist'
    GROUP BY buyer_org_number, year, provider_org_number, patient_pseudonym
    HAVING sessions > 0
) AS per_patient
GROUP BY buyer_org_number, year, provider_org_number;

-- Findings and the amount at stake per rule and provider, by visit year.
CREATE VIEW report_findings AS
SELECT
    buyer_org_number,
    toUInt16(toYear(visit_date)) AS year,
    rule_id,
    severity,
    provider_org_number,
    any(provider_name) AS provider,
    count() AS findings,
    -- Invoice lines flagged; NULL for a rule whose findings are about a
    -- provider's month (the review's: their key is a subject key,
    -- `…:rule:detail`), which flag no line.
    nullIf(uniqExactIf(line_key, position(line_key, concat(':', rule_id, ':')) = 0), 0) AS lines,
    sum(amount_at_stake_ore) AS amount_at_stake_ore
FROM findings_active
GROUP BY buyer_org_number, year, rule_id, severity, provider_org_number;

-- The share of the cost that is disputable: net amount of lines with at
-- least one finding (each line once), against the whole.
CREATE VIEW report_disputable_share AS
SELECT
    buyer_org_number,
    toUInt16(toYear(month)) AS year,
    sum(net_amount_ore) AS all_net_amount_ore,
    sum(flagged_net_ore) AS all_flagged_net_ore,
    sum(flagged_contacts) AS all_flagged_contacts,
    if(sum(net_amount_ore) = 0, NULL, round(100 * sum(flagged_net_ore) / sum(net_amount_ore), 2)) AS disputable_percent
FROM agg_monthly
GROUP BY buyer_org_number, year;

-- Per visit month, profession and provider: contacts and patients, and the
-- derived figures peers are compared on.
CREATE VIEW report_provider_month AS
SELECT
    buyer_org_number,
    month,
    profession_code,
    provider_org_number,
    any(provider_name) AS provider,
    sum(contacts) AS contacts,
    uniqExactMerge(patients) AS patients,
    sum(net_amount_ore) AS net_amount_ore,
    contacts / patients AS contacts_per_patient,
    (contacts - patients) / contacts AS repeat_share
FROM agg_monthly
GROUP BY buyer_org_number, month, profession_code, provider_org_number
HAVING contacts >= (SELECT argMax(value, loaded_at) FROM ref_parameters WHERE name = 'peer_min_contacts')
    AND patients > 0;

-- The peers' median and median absolute deviation per month and profession.
CREATE VIEW report_peer_statistics AS
SELECT
    buyer_org_number,
    month,
    profession_code,
    peers,
    median_contacts_per_patient,
    median_repeat_share,
    mad_contacts_per_patient,
    mad_repeat_share
FROM
(
    SELECT
        buyer_org_number,
        month,
        profession_code,
        count() AS peers,
        median(contacts_per_patient) AS median_contacts_per_patient,
        median(repeat_share) AS median_repeat_share
    FROM report_provider_month
    GROUP BY buyer_org_number, month, profession_code
) AS medians
ANY LEFT JOIN
(
    SELECT
        buyer_org_number,
        month,
        profession_code,
        median(abs(contacts_per_patient - cpp_median)) AS mad_contacts_per_patient,
        median(abs(repeat_share - share_median)) AS mad_repeat_share
    FROM
    (
        SELECT buyer_org_number, month, profession_code, contacts_per_patient, repeat_share
        FROM report_provider_month
    ) AS provider_months
    ANY LEFT JOIN
    (
        SELECT
            buyer_org_number,
            month,
            profession_code,
            median(contacts_per_patient) AS cpp_median,
            median(repeat_share) AS share_median
        FROM report_provider_month
        GROUP BY buyer_org_number, month, profession_code
    ) AS centres USING (buyer_org_number, month, profession_code)
    GROUP BY buyer_org_number, month, profession_code
) AS deviations USING (buyer_org_number, month, profession_code);

-- Providers far from their peers: robust z-scores (distance from the median
-- in MADs scaled by 1.4826, with a floor of 10 % of the median for contacts
-- per patient and 5 percentage points for the repeat share), judged when
-- enough providers have enough contacts (config reporting.peer_*). Only
-- "too many" counts: above the peers, not below.
CREATE VIEW report_provider_peers AS
SELECT
    buyer_org_number,
    toUInt16(toYear(month)) AS year,
    month,
    profession_code,
    provider_org_number,
    provider,
    contacts,
    patients,
    net_amount_ore,
    contacts_per_patient,
    repeat_share,
    peers,
    median_contacts_per_patient,
    median_repeat_share,
    (contacts_per_patient - median_contacts_per_patient)
        / greatest(1.4826 * mad_contacts_per_patient, 0.1 * median_contacts_per_patient) AS contacts_score,
    (repeat_share - median_repeat_share) / greatest(1.4826 * mad_repeat_share, 0.05) AS repeat_score,
    peers >= (SELECT argMax(value, loaded_at) FROM ref_parameters WHERE name = 'peer_min_providers')
        AND greatest(contacts_score, repeat_score)
            > (SELECT argMax(value, loaded_at) FROM ref_parameters WHERE name = 'peer_threshold') AS far_from_peers
FROM report_provider_month
ANY LEFT JOIN report_peer_statistics USING (buyer_org_number, month, profession_code);

-- Patients invoiced digitally by a provider whose group also runs the
-- health centre they are listed at on the visit date (Region Stockholm's
-- 2025 claim): per provider, health centre and visit month.
CREATE VIEW report_same_group_listing AS
SELECT
    buyer_org_number,
    toUInt16(toYear(month)) AS year,
    month,
    provider_org_number,
    any(provider_name) AS provider,
    listing_provider_group,
    listing_unit_hsa_id,
    any(listing_unit_name) AS listing_unit,
    sum(contacts) AS contacts,
    uniqExactMerge(patients) AS patients,
    sum(net_amount_ore) AS net_amount_ore
FROM agg_monthly
WHERE listing_unit_hsa_id != ''
    AND (provider_org_number, listing_provider_group)
        IN (SELECT provider_org_number, provider_group FROM ref_provider_groups_current)
GROUP BY buyer_org_number, month, provider_org_number, listing_provider_group, listing_unit_hsa_id;

-- Cost and contacts per patient municipality (the name where known), from
-- the lines.
CREATE VIEW report_cost_by_municipality AS
SELECT
    buyer_org_number,
    toUInt16(toYear(visit_date)) AS year,
    patient_municipality_code,
    any(if(name = '', patient_municipality_code, name)) AS municipality,
    sum(if(invoice_type = 'credit_note', -toInt64(quantity), toInt64(quantity))) AS contacts,
    uniqExact(patient_pseudonym) AS patients,
    sum(signed_net_amount_ore) AS net_amount_ore
FROM invoice_line_versions FINAL
ANY LEFT JOIN
(
    SELECT municipality_code AS patient_municipality_code, argMax(name, loaded_at) AS name
    FROM ref_municipalities
    GROUP BY patient_municipality_code
) AS names USING (patient_municipality_code)
GROUP BY buyer_org_number, year, patient_municipality_code;
