-- Views over the invoice lines. Every file in views/ is re-created at every
-- start (see crates/store/src/views.rs): change a view here, not in a migration.

-- The latest version of each line identity (seller, invoice id, line
-- number), redeliveries and superseded versions collapsed: what BI tools
-- and reports read. invoice_lines (migration 0001) is no longer written.
CREATE VIEW invoice_lines_current AS
SELECT * FROM invoice_line_versions FINAL;

-- Cost and contacts per month and profession. Contacts count invoices as +quantity
-- and credit notes as -quantity, so a credited line nets to zero.
CREATE VIEW report_monthly_profession AS
SELECT
    buyer_org_number,
    toStartOfMonth(visit_date) AS month,
    profession_code,
    tariff_class,
    sum(if(invoice_type = 'credit_note', -toInt64(quantity), toInt64(quantity))) AS contacts,
    sum(signed_net_amount_ore) AS net_amount_ore,
    sum(if(invoice_type = 'credit_note', -patient_fee_ore, patient_fee_ore)) AS patient_fee_ore,
    uniqExact(patient_pseudonym) AS patients
FROM invoice_line_versions FINAL
GROUP BY buyer_org_number, month, profession_code, tariff_class;
