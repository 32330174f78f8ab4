-- Cost and contacts per month and profession. Contacts count invoices as +quantity
-- and credit notes as -quantity, so a credited line nets to zero.
CREATE VIEW IF NOT EXISTS report_monthly_profession AS
SELECT
    buyer_org_number,
    toStartOfMonth(visit_date) AS month,
    profession_code,
    tariff_class,
    sum(if(invoice_type = 'credit_note', -toInt64(quantity), toInt64(quantity))) AS contacts,
    sum(signed_net_amount_ore) AS net_amount_ore,
    sum(if(invoice_type = 'credit_note', -patient_fee_ore, patient_fee_ore)) AS patient_fee_ore,
    uniqExact(patient_pseudonym) AS patients
FROM invoice_lines FINAL
GROUP BY buyer_org_number, month, profession_code, tariff_class;
