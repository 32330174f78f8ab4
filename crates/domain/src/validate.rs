//! Validation and enrichment of one invoice line.
//!
//! Every check runs, so a rejected line carries all its problems at once.
//! Messages name the field and the rule, never the clear-text patient id.

use serde::{Deserialize, Serialize};

use crate::codes::{is_county_code, is_hsa_id, is_icd10_code, is_kva_code, is_municipality_code};
use crate::codes::{normalise_org_number, parse_invoice_id};
use crate::patient::PatientIdError;
use crate::{AgeGroup, EnrichedLine, Initiative, InvoiceLine, InvoiceType, PatientId, Provenance, Pseudonymiser};
use crate::{Sex, Tariffs};

/// Why a line (or a record) was rejected. The code is stable: dashboards and
/// the dead-letter topic use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    // Decoding, before the line exists.
    BadWireHeader,
    UnknownSchemaId,
    MalformedAvro,
    // The line.
    MissingField,
    InvalidInvoiceId,
    InvoiceIdSellerMismatch,
    InvalidInvoiceType,
    InvalidLineNumber,
    InvalidOrgNumber,
    InvalidPatientId,
    PatientIdCheckDigit,
    InvalidBirthDate,
    VisitBeforeBirth,
    InvalidCountyCode,
    InvalidMunicipalityCode,
    InvalidSexCode,
    InvalidCareType,
    InvalidVisitType,
    InvalidHsaId,
    UnknownProfessionCode,
    InvalidProductCategory,
    InvalidQuantity,
    NegativeAmount,
    GrossAmountMismatch,
    NetAmountMismatch,
    CareDateAfterInvoiceDate,
    InvalidDiagnosisCode,
    InvalidProcedureCode,
    InvalidContactChannel,
    // Downstream of the ingester.
    SinkRejected,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::BadWireHeader => "bad_wire_header",
            ReasonCode::UnknownSchemaId => "unknown_schema_id",
            ReasonCode::MalformedAvro => "malformed_avro",
            ReasonCode::MissingField => "missing_field",
            ReasonCode::InvalidInvoiceId => "invalid_invoice_id",
            ReasonCode::InvoiceIdSellerMismatch => "invoice_id_seller_mismatch",
            ReasonCode::InvalidInvoiceType => "invalid_invoice_type",
            ReasonCode::InvalidLineNumber => "invalid_line_number",
            ReasonCode::InvalidOrgNumber => "invalid_org_number",
            ReasonCode::InvalidPatientId => "invalid_patient_id",
            ReasonCode::PatientIdCheckDigit => "patient_id_check_digit",
            ReasonCode::InvalidBirthDate => "invalid_birth_date",
            ReasonCode::VisitBeforeBirth => "visit_before_birth",
            ReasonCode::InvalidCountyCode => "invalid_county_code",
            ReasonCode::InvalidMunicipalityCode => "invalid_municipality_code",
            ReasonCode::InvalidSexCode => "invalid_sex_code",
            ReasonCode::InvalidCareType => "invalid_care_type",
            ReasonCode::InvalidVisitType => "invalid_visit_type",
            ReasonCode::InvalidHsaId => "invalid_hsa_id",
            ReasonCode::UnknownProfessionCode => "unknown_profession_code",
            ReasonCode::InvalidProductCategory => "invalid_product_category",
            ReasonCode::InvalidQuantity => "invalid_quantity",
            ReasonCode::NegativeAmount => "negative_amount",
            ReasonCode::GrossAmountMismatch => "gross_amount_mismatch",
            ReasonCode::NetAmountMismatch => "net_amount_mismatch",
            ReasonCode::CareDateAfterInvoiceDate => "care_date_after_invoice_date",
            ReasonCode::InvalidDiagnosisCode => "invalid_diagnosis_code",
            ReasonCode::InvalidProcedureCode => "invalid_procedure_code",
            ReasonCode::InvalidContactChannel => "invalid_contact_channel",
            ReasonCode::SinkRejected => "sink_rejected",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub code: ReasonCode,
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(code: ReasonCode, field: &str, message: impl Into<String>) -> Violation {
        Violation { code, field: field.to_string(), message: message.into() }
    }
}

/// What enrichment needs besides the line.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub tariffs: &'a Tariffs,
    pub pseudonymiser: &'a Pseudonymiser,
    pub ingested_at_ms: i64,
}

const CONTACT_CHANNELS: [&str; 3] = ["video", "chat", "phone"];

/// Validates `line`; on success returns it pseudonymised and enriched.
pub fn validate_and_enrich(
    line: &InvoiceLine,
    source: Provenance,
    ctx: Context<'_>,
) -> Result<EnrichedLine, Vec<Violation>> {
    let mut v = Vec::new();
    let mut violation = |code, field: &str, message: &str| v.push(Violation::new(code, field, message));

    for (field, value) in [
        ("agreement_chapter", &line.agreement_chapter),
        ("agreement_point", &line.agreement_point),
        ("provider_name", &line.provider_name),
    ] {
        if value.trim().is_empty() {
            violation(ReasonCode::MissingField, field, "is empty");
        }
    }

    let invoice_type = InvoiceType::from_code(&line.invoice_type);
    if invoice_type.is_none() {
        violation(ReasonCode::InvalidInvoiceType, "invoice_type", "must be 380 (invoice) or 381 (credit note)");
    }
    if line.line_number < 1 {
        violation(ReasonCode::InvalidLineNumber, "line_number", "must be 1 or more");
    }

    let seller = normalise_org_number(&line.seller_org_number);
    let buyer = normalise_org_number(&line.buyer_org_number);
    let provider = normalise_org_number(&line.provider_org_number);
    for (field, parsed) in
        [("seller_org_number", &seller), ("buyer_org_number", &buyer), ("provider_org_number", &provider)]
    {
        if parsed.is_none() {
            violation(ReasonCode::InvalidOrgNumber, field, "is not ten digits with a valid check digit");
        }
    }
    match parse_invoice_id(&line.invoice_id) {
        None => violation(ReasonCode::InvalidInvoiceId, "invoice_id", "is not ZVF + org number + YYMM + 6 digits"),
        Some(parts) => {
            if seller.as_deref().is_some_and(|s| s != parts.seller_org_number) {
                violation(
                    ReasonCode::InvoiceIdSellerMismatch,
                    "invoice_id",
                    "names another seller than seller_org_number",
                );
            }
        }
    }

    let patient = match PatientId::parse(&line.patient_id) {
        Ok(p) => Some(p),
        Err(err) => {
            let code = match err {
                PatientIdError::Shape => ReasonCode::InvalidPatientId,
                PatientIdError::BirthDate => ReasonCode::InvalidBirthDate,
                PatientIdError::CheckDigit => ReasonCode::PatientIdCheckDigit,
            };
            violation(code, "patient_id", &err.to_string());
            None
        }
    };
    if let Some(p) = &patient {
        if p.birth_date().is_some_and(|b| line.visit_date < b) {
            violation(ReasonCode::VisitBeforeBirth, "visit_date", "is before the patient's birth date");
        }
    }

    if !is_county_code(&line.patient_county_code) {
        violation(ReasonCode::InvalidCountyCode, "patient_county_code", "is not an SCB county code");
    }
    if !is_municipality_code(&line.patient_municipality_code) {
        violation(ReasonCode::InvalidMunicipalityCode, "patient_municipality_code", "is not an SCB municipality code");
    } else if line.patient_municipality_code[..2] != line.patient_county_code {
        violation(ReasonCode::InvalidMunicipalityCode, "patient_municipality_code", "lies in another county");
    }
    let invoice_sex = match line.patient_sex {
        None => None,
        Some(code) => {
            let sex = Sex::from_iso5218(code);
            if sex.is_none() {
                violation(ReasonCode::InvalidSexCode, "patient_sex", "must be 0, 1, 2 or 9");
            }
            sex
        }
    };

    if !["outpatient", "inpatient"].contains(&line.care_type.as_str()) {
        violation(ReasonCode::InvalidCareType, "care_type", "must be outpatient or inpatient");
    }
    if !["new", "return"].contains(&line.visit_type.as_str()) {
        violation(ReasonCode::InvalidVisitType, "visit_type", "must be new or return");
    }
    if !is_hsa_id(&line.performing_unit_hsa_id) {
        violation(
            ReasonCode::InvalidHsaId,
            "performing_unit_hsa_id",
            "is not an HSA-id (SE + org number + - + local id)",
        );
    }
    let tariff_class = ctx.tariffs.class_of(&line.profession_code);
    if tariff_class.is_none() {
        violation(ReasonCode::UnknownProfessionCode, "profession_code", "is not in the profession table");
    }
    let product_ok = line.product_category.len() == 2 && line.product_category.bytes().all(|b| b.is_ascii_digit());
    if !product_ok {
        violation(ReasonCode::InvalidProductCategory, "product_category", "must be two digits");
    }

    if line.quantity < 1 {
        violation(ReasonCode::InvalidQuantity, "quantity", "must be 1 or more");
    }
    let amounts = [
        ("unit_price_ore", line.unit_price_ore),
        ("patient_fee_ore", line.patient_fee_ore),
        ("gross_amount_ore", line.gross_amount_ore),
        ("net_amount_ore", line.net_amount_ore),
        ("payable_amount_ore", line.payable_amount_ore),
    ];
    let mut any_negative = false;
    for (field, amount) in amounts {
        if amount < 0 {
            any_negative = true;
            violation(
                ReasonCode::NegativeAmount,
                field,
                "is negative; a credit note has type 381 and positive amounts",
            );
        }
    }
    if !any_negative && line.quantity >= 1 {
        if line.unit_price_ore.checked_mul(i64::from(line.quantity)) != Some(line.gross_amount_ore) {
            violation(ReasonCode::GrossAmountMismatch, "gross_amount_ore", "is not quantity × unit price");
        }
        if line.gross_amount_ore.checked_sub(line.patient_fee_ore) != Some(line.net_amount_ore) {
            violation(ReasonCode::NetAmountMismatch, "net_amount_ore", "is not gross amount − patient fee");
        }
    }

    if line.visit_date > line.invoice_date {
        violation(ReasonCode::CareDateAfterInvoiceDate, "visit_date", "is after the invoice date");
    }
    if line.diagnosis_codes.iter().any(|c| !is_icd10_code(c)) {
        violation(ReasonCode::InvalidDiagnosisCode, "diagnosis_codes", "holds a code that is not ICD-10-SE shaped");
    }
    if line.procedure_codes.iter().any(|c| !is_kva_code(c)) {
        violation(ReasonCode::InvalidProcedureCode, "procedure_codes", "holds a code that is not KVÅ shaped");
    }
    if line.contact_channel.as_deref().is_some_and(|c| !CONTACT_CHANNELS.contains(&c)) {
        violation(ReasonCode::InvalidContactChannel, "contact_channel", "must be video, chat or phone");
    }

    let (Some(invoice_type), Some(seller), Some(buyer), Some(provider), Some(patient), Some(tariff_class)) =
        (invoice_type, seller, buyer, provider, patient, tariff_class)
    else {
        return Err(v);
    };
    if !v.is_empty() {
        return Err(v);
    }

    let age_years = patient.age_on(line.visit_date);
    Ok(EnrichedLine {
        invoice_id: line.invoice_id.clone(),
        line_number: line.line_number,
        invoice_type,
        credited_invoice_id: line.credited_invoice_id.clone(),
        seller_org_number: seller,
        buyer_org_number: buyer,
        invoice_date: line.invoice_date,
        patient_pseudonym: ctx.pseudonymiser.pseudonymise(&patient),
        patient_id_kind: patient.kind(),
        patient_county_code: line.patient_county_code.clone(),
        patient_municipality_code: line.patient_municipality_code.clone(),
        sex: patient.sex().or(invoice_sex).unwrap_or(Sex::Unknown),
        age_years,
        age_group: AgeGroup::of_age(age_years),
        initiative: Initiative::classify(line.remittance_number.as_deref(), &line.agreement_chapter),
        remittance_number: line.remittance_number.clone().filter(|r| !r.trim().is_empty()),
        agreement_chapter: line.agreement_chapter.trim().to_string(),
        agreement_point: line.agreement_point.trim().to_string(),
        care_type: line.care_type.clone(),
        visit_type: line.visit_type.clone(),
        visit_date: line.visit_date,
        visit_time: line.visit_time,
        performing_unit_hsa_id: line.performing_unit_hsa_id.clone(),
        provider_org_number: provider,
        provider_name: line.provider_name.clone(),
        profession_code: line.profession_code.clone(),
        tariff_class,
        tariff_ore: ctx.tariffs.price(tariff_class, line.visit_date),
        product_category: line.product_category.clone(),
        quantity: line.quantity,
        unit_price_ore: line.unit_price_ore,
        patient_fee_ore: line.patient_fee_ore,
        gross_amount_ore: line.gross_amount_ore,
        net_amount_ore: line.net_amount_ore,
        diagnosis_codes: line.diagnosis_codes.clone(),
        procedure_codes: line.procedure_codes.clone(),
        contact_channel: line.contact_channel.clone(),
        needs_assessment: line.needs_assessment,
        source,
        ingested_at_ms: ctx.ingested_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, tariffs};
    use crate::TariffClass;

    /// The shared fixture, as these tests assert on it: the seller written
    /// with a hyphen (validation normalises it) and no referral (an
    /// own-initiative contact).
    fn line() -> InvoiceLine {
        InvoiceLine { seller_org_number: "232100-0115".into(), remittance_number: None, ..testing::invoice_line() }
    }

    fn check(mutate: impl FnOnce(&mut InvoiceLine), expected: &[ReasonCode]) {
        let tariffs = tariffs();
        let p = Pseudonymiser::new(&[7u8; 32]).expect("key");
        let ctx = Context { tariffs: &tariffs, pseudonymiser: &p, ingested_at_ms: 1 };
        let source = Provenance { topic: "t".into(), partition: 0, offset: 0 };
        let mut l = line();
        mutate(&mut l);
        let got: Vec<ReasonCode> = match validate_and_enrich(&l, source, ctx) {
            Ok(_) => vec![],
            Err(v) => v.iter().map(|v| v.code).collect(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn the_fixture_is_valid_and_enriched() {
        let tariffs = tariffs();
        let p = Pseudonymiser::new(&[7u8; 32]).expect("key");
        let ctx = Context { tariffs: &tariffs, pseudonymiser: &p, ingested_at_ms: 1 };
        let source = Provenance { topic: "t".into(), partition: 2, offset: 9 };
        let e = validate_and_enrich(&line(), source, ctx).expect("valid");
        assert_eq!(e.seller_org_number, "2321000115");
        assert_eq!(e.age_years, Some(43));
        assert_eq!(e.age_group, AgeGroup::Age40To64);
        assert_eq!(e.sex, Sex::Male);
        assert_eq!(e.initiative, Initiative::OwnInitiative);
        assert_eq!(e.tariff_class, TariffClass::Physician);
        assert_eq!(e.tariff_ore, Some(50_000));
        assert_eq!(e.signed_net_amount_ore(), 50_000);
        assert_eq!(e.patient_pseudonym.len(), 32);
        let json = serde_json::to_string(&e).expect("serialises");
        assert!(!json.contains("198112189876") && !json.contains("8112189876"), "no clear-text id in {json}");
    }

    #[test]
    fn each_rule_with_its_boundary() {
        use ReasonCode::*;
        check(|_| {}, &[]);
        check(|l| l.invoice_type = "381".into(), &[]);
        check(|l| l.invoice_type = "382".into(), &[InvalidInvoiceType]);
        check(|l| l.line_number = 0, &[InvalidLineNumber]);
        check(|l| l.buyer_org_number = "2321000199".into(), &[InvalidOrgNumber]);
        check(|l| l.invoice_id = "ZVF23210001152503".into(), &[InvalidInvoiceId]);
        check(|l| l.invoice_id = "ZVF23210001982503000042".into(), &[InvoiceIdSellerMismatch]);
        check(|l| l.patient_id = "198112189875".into(), &[PatientIdCheckDigit]);
        check(|l| l.patient_id = "19811218987".into(), &[InvalidPatientId]);
        check(|l| l.patient_id = "198113189876".into(), &[InvalidBirthDate]);
        check(|l| l.patient_id = "R1234567".into(), &[]);
        check(|l| l.visit_date = "1981-12-17".parse().expect("date"), &[VisitBeforeBirth]);
        check(|l| l.patient_county_code = "02".into(), &[InvalidCountyCode, InvalidMunicipalityCode]);
        check(|l| l.patient_municipality_code = "2580".into(), &[InvalidMunicipalityCode]);
        check(|l| l.patient_sex = Some(3), &[InvalidSexCode]);
        check(|l| l.patient_sex = None, &[]);
        check(|l| l.care_type = "home".into(), &[InvalidCareType]);
        check(|l| l.visit_type = "first".into(), &[InvalidVisitType]);
        check(|l| l.performing_unit_hsa_id = "094882".into(), &[InvalidHsaId]);
        check(|l| l.profession_code = "XX".into(), &[UnknownProfessionCode]);
        check(|l| l.product_category = "4".into(), &[InvalidProductCategory]);
        check(|l| l.quantity = 0, &[InvalidQuantity]);
        check(|l| l.net_amount_ore = -1, &[NegativeAmount]);
        check(|l| l.gross_amount_ore = 49_999, &[GrossAmountMismatch, NetAmountMismatch]);
        check(|l| l.net_amount_ore = 40_000, &[NetAmountMismatch]);
        check(|l| l.visit_date = l.invoice_date, &[]);
        check(|l| l.visit_date = "2025-04-01".parse().expect("date"), &[CareDateAfterInvoiceDate]);
        check(|l| l.diagnosis_codes.push("j06".into()), &[InvalidDiagnosisCode]);
        check(|l| l.procedure_codes.push("ZV05".into()), &[InvalidProcedureCode]);
        check(|l| l.contact_channel = Some("fax".into()), &[InvalidContactChannel]);
        check(|l| l.provider_name = " ".into(), &[MissingField]);
    }

    #[test]
    fn all_problems_at_once() {
        use ReasonCode::*;
        check(
            |l| {
                l.patient_id = "198112189875".into();
                l.profession_code = "??".into();
                l.net_amount_ore = -5;
            },
            &[PatientIdCheckDigit, UnknownProfessionCode, NegativeAmount],
        );
    }

    #[test]
    fn reason_codes_serialise_as_their_str() {
        for code in [ReasonCode::MalformedAvro, ReasonCode::CareDateAfterInvoiceDate, ReasonCode::SinkRejected] {
            assert_eq!(serde_json::to_value(code).expect("json"), serde_json::json!(code.as_str()));
        }
    }
}
