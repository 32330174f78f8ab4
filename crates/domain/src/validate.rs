//! Validation and enrichment of one invoice line.
//!
//! Every check runs, so a rejected line carries all its problems at once.
//! Messages name the field and the rule, never the clear-text patient id.
//!
//! Each check rejects a line only where a source defines the format: Inera's
//! RIV `financial:billing:claim` (the invoice line), Skatteverket (personnummer,
//! samordningsnummer, organisation numbers), SCB (county and municipality
//! codes), Inera HSA (HSA-ids), Socialstyrelsen (ICD-10-SE, KVÅ), the national
//! agreement (riksavtalet) or the region's own configuration (tariff table,
//! reservnummer formats, sellers' invoice numbering). A check without such a
//! source is a [`CheckMode`] in config: by default a warning the ingester
//! counts (`distans_ingester_line_warnings_total{reason}`), never a dead
//! letter. Free text is also normalised on every accepted line (see
//! [`CheckModes::invalid_free_text`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codes::{is_county_code, is_hsa_id, is_icd10_code, is_invoice_id, is_kva_code, is_municipality_code};
use crate::codes::{normalise_org_number, InvoiceIdMatch, InvoiceIdPattern, INVOICE_ID_MAX_CHARS};
use crate::patient::{PatientIdError, PatientIdFormats, ReservnummerFormat};
use crate::{text, Sex, Tariffs};
use crate::{AgeGroup, EnrichedLine, Initiative, InvoiceLine, InvoiceType, Provenance, Pseudonymiser};

/// Why a line (or a record) was rejected. The code is stable: dashboards and
/// the dead-letter topic use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    // Decoding, before the line exists.
    BadWireHeader,
    UnknownSchemaId,
    /// The writer's schema (from the schema registry) cannot be read by
    /// distans' schema under Avro's resolution rules (a field distans needs
    /// has no default, a type changed, another record name): the producer
    /// broke the subject's compatibility rule.
    IncompatibleSchema,
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
    AmountOutOfRange,
    GrossAmountMismatch,
    NetAmountMismatch,
    CareDateAfterInvoiceDate,
    InvalidDiagnosisCode,
    InvalidProcedureCode,
    InvalidContactChannel,
    ImplausibleAge,
    /// Free text (a name, an agreement point, a referral number …) longer
    /// than [`text::MAX_FREE_TEXT_CHARS`] or holding a control or
    /// bidirectional formatting character ([`text::is_hostile`]).
    InvalidFreeText,
    // Downstream of the ingester.
    SinkRejected,
    /// A record larger than distans can produce (`kafka.max_record_bytes`),
    /// or one the broker refused as too large.
    RecordTooLarge,
    /// A record the broker refused for good for another reason (e.g. an
    /// invalid record).
    ProduceRefused,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::BadWireHeader => "bad_wire_header",
            ReasonCode::UnknownSchemaId => "unknown_schema_id",
            ReasonCode::IncompatibleSchema => "incompatible_schema",
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
            ReasonCode::AmountOutOfRange => "amount_out_of_range",
            ReasonCode::GrossAmountMismatch => "gross_amount_mismatch",
            ReasonCode::NetAmountMismatch => "net_amount_mismatch",
            ReasonCode::CareDateAfterInvoiceDate => "care_date_after_invoice_date",
            ReasonCode::InvalidDiagnosisCode => "invalid_diagnosis_code",
            ReasonCode::InvalidProcedureCode => "invalid_procedure_code",
            ReasonCode::InvalidContactChannel => "invalid_contact_channel",
            ReasonCode::ImplausibleAge => "implausible_age",
            ReasonCode::InvalidFreeText => "invalid_free_text",
            ReasonCode::SinkRejected => "sink_rejected",
            ReasonCode::RecordTooLarge => "record_too_large",
            ReasonCode::ProduceRefused => "produce_refused",
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
    pub validation: &'a Validation,
    pub ingested_at_ms: i64,
}

const CONTACT_CHANNELS: [&str; 3] = ["video", "chat", "phone"];

/// The largest `quantity` a line may have. RIV gives no upper limit; a line
/// of digital contacts has 1. With [`MAX_LINE_AMOUNT_ORE`] it keeps the sums
/// of a national year (about 3 M lines) far inside `i64`, in ClickHouse and
/// in every report: a larger value is a producer's error, dead-lettered as
/// `invalid_quantity`.
pub const MAX_QUANTITY: i32 = 10_000;

/// The largest unit price, patient fee, gross or net amount of a line, öre
/// (100 000 000 kr; a contact costs some hundred kronor, `[tariffs]`). A
/// larger one is dead-lettered as `amount_out_of_range`; 3 M lines at this
/// amount sum to 3 × 10¹⁶ öre, within `i64` (9.2 × 10¹⁸). The invoice's
/// `payable_amount_ore` is not summed and has no limit.
pub const MAX_LINE_AMOUNT_ORE: i64 = 10_000_000_000;

/// What a check without a national source does with a line that fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckMode {
    /// A dead letter.
    Reject,
    /// The line is accepted; the ingester counts and logs the warning.
    Warn,
    /// Not checked.
    Off,
}

/// The checks that no source defines, each with its [`CheckMode`]
/// (`[validation.checks]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckModes {
    /// The visit date is before the earliest birth date the patient id allows.
    pub visit_before_birth: CheckMode,
    /// The age on the visit date is above `max_age_years`.
    pub implausible_age: CheckMode,
    /// `gross_amount_ore` is not `quantity × unit_price_ore`.
    pub gross_amount_mismatch: CheckMode,
    /// `net_amount_ore` is not `gross_amount_ore − patient_fee_ore`.
    pub net_amount_mismatch: CheckMode,
    /// `contact_channel` is not `video`, `chat` or `phone` (distans' own
    /// optional field; RIV has no channel).
    pub invalid_contact_channel: CheckMode,
    /// Free text (`provider_name`, `agreement_chapter`, `agreement_point`,
    /// `remittance_number`, `contact_channel`) longer than
    /// [`text::MAX_FREE_TEXT_CHARS`] characters or holding a control or
    /// bidirectional formatting character ([`text::is_hostile`]). Whatever
    /// the mode, an accepted line carries these fields normalised by
    /// [`text::printable`] (each such character as U+FFFD, cut to the limit
    /// with `…`), so no such text is stored or reaches the detector and the
    /// people it alerts; `reject` makes the line a dead letter instead.
    pub invalid_free_text: CheckMode,
}

impl Default for CheckModes {
    fn default() -> CheckModes {
        CheckModes {
            visit_before_birth: CheckMode::Warn,
            implausible_age: CheckMode::Warn,
            gross_amount_mismatch: CheckMode::Warn,
            net_amount_mismatch: CheckMode::Warn,
            invalid_contact_channel: CheckMode::Warn,
            invalid_free_text: CheckMode::Warn,
        }
    }
}

impl CheckModes {
    /// The reason codes of the checks in [`CheckMode::Warn`], in field
    /// order: the warnings a line can carry (the ingester shows each as a
    /// counter from its start, at 0 until a line fails it).
    pub fn warned(&self) -> Vec<ReasonCode> {
        [
            (self.visit_before_birth, ReasonCode::VisitBeforeBirth),
            (self.implausible_age, ReasonCode::ImplausibleAge),
            (self.gross_amount_mismatch, ReasonCode::GrossAmountMismatch),
            (self.net_amount_mismatch, ReasonCode::NetAmountMismatch),
            (self.invalid_contact_channel, ReasonCode::InvalidContactChannel),
            (self.invalid_free_text, ReasonCode::InvalidFreeText),
        ]
        .into_iter()
        .filter(|(mode, _)| *mode == CheckMode::Warn)
        .map(|(_, reason)| reason)
        .collect()
    }
}

/// What validation takes from config (`[validation]` in `defaults.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSettings {
    /// The regions' reservnummer formats.
    #[serde(default)]
    pub reservnummer: Vec<ReservnummerFormat>,
    /// Seller organisation number → its invoice numbering (see
    /// [`InvoiceIdPattern`]); sellers not listed may use any invoice id.
    #[serde(default)]
    pub invoice_id_patterns: BTreeMap<String, String>,
    pub checks: CheckModes,
    /// Ages above this (years) are `implausible_age`.
    pub max_age_years: u32,
}

impl Default for ValidationSettings {
    fn default() -> ValidationSettings {
        ValidationSettings {
            reservnummer: Vec::new(),
            invoice_id_patterns: BTreeMap::new(),
            checks: CheckModes::default(),
            max_age_years: 120,
        }
    }
}

impl ValidationSettings {
    /// Every problem at once: bad patterns, organisation numbers, formats.
    pub fn problems(&self) -> Vec<String> {
        Validation::new(self).err().unwrap_or_default()
    }
}

/// [`ValidationSettings`], compiled.
#[derive(Debug, Clone)]
pub struct Validation {
    patient_ids: PatientIdFormats,
    invoice_ids: BTreeMap<String, InvoiceIdPattern>,
    checks: CheckModes,
    max_age_years: u32,
}

impl Default for Validation {
    /// No reservnummer formats, no seller patterns, the default check modes.
    fn default() -> Validation {
        Validation {
            patient_ids: PatientIdFormats::default(),
            invoice_ids: BTreeMap::new(),
            checks: CheckModes::default(),
            max_age_years: ValidationSettings::default().max_age_years,
        }
    }
}

impl Validation {
    pub fn new(settings: &ValidationSettings) -> Result<Validation, Vec<String>> {
        let mut problems = Vec::new();
        let patient_ids = PatientIdFormats::new(&settings.reservnummer).unwrap_or_else(|p| {
            problems.extend(p);
            PatientIdFormats::default()
        });
        let mut invoice_ids = BTreeMap::new();
        for (seller, pattern) in &settings.invoice_id_patterns {
            if normalise_org_number(seller).as_deref() != Some(seller.as_str()) {
                problems
                    .push(format!("validation.invoice_id_patterns: {seller:?} is not a ten-digit organisation number"));
            }
            match InvoiceIdPattern::new(pattern, seller) {
                Ok(p) => {
                    invoice_ids.insert(seller.clone(), p);
                }
                Err(e) => problems.push(format!("validation.invoice_id_patterns.{seller}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Validation { patient_ids, invoice_ids, checks: settings.checks, max_age_years: settings.max_age_years })
        } else {
            Err(problems)
        }
    }

    /// The compiled reservnummer formats (for registers that hold patient ids).
    pub fn patient_ids(&self) -> &PatientIdFormats {
        &self.patient_ids
    }
}

/// A valid line, and the warnings of checks in [`CheckMode::Warn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub line: EnrichedLine,
    pub warnings: Vec<Violation>,
}

/// The problems of one line: violations reject it, warnings do not.
#[derive(Default)]
struct Problems {
    rejected: Vec<Violation>,
    warnings: Vec<Violation>,
}

impl Problems {
    fn reject(&mut self, code: ReasonCode, field: &str, message: &str) {
        self.rejected.push(Violation::new(code, field, message));
    }

    /// A check without a source: rejected, warned or skipped as configured.
    fn unsourced(&mut self, mode: CheckMode, code: ReasonCode, field: &str, message: &str) {
        match mode {
            CheckMode::Reject => self.reject(code, field, message),
            CheckMode::Warn => self.warnings.push(Violation::new(code, field, message)),
            CheckMode::Off => {}
        }
    }
}

/// Free text as an accepted line carries it: [`text::printable`] within
/// [`text::MAX_FREE_TEXT_CHARS`] (unchanged when it was acceptable).
fn free_text(value: &str) -> String {
    text::printable(value, text::MAX_FREE_TEXT_CHARS).into_owned()
}

/// Why `value` is not acceptable free text, if it is not: too long, or
/// holding a character that could steer a terminal or reorder text (named
/// by code point and position, never quoted).
fn free_text_problem(value: &str) -> Option<String> {
    let chars = value.chars().count();
    if chars > text::MAX_FREE_TEXT_CHARS {
        return Some(format!("is {chars} characters long, at most {} are accepted", text::MAX_FREE_TEXT_CHARS));
    }
    let (at, c) = value.chars().enumerate().find(|(_, c)| text::is_hostile(*c))?;
    Some(format!(
        "holds a control or bidirectional formatting character (U+{:04X} at character {})",
        u32::from(c),
        at + 1
    ))
}

/// [`validate`] without the warnings.
pub fn validate_and_enrich(
    line: &InvoiceLine,
    source: Provenance,
    ctx: Context<'_>,
) -> Result<EnrichedLine, Vec<Violation>> {
    validate(line, source, ctx).map(|accepted| accepted.line)
}

/// Validates `line`; on success returns it pseudonymised and enriched, with
/// the warnings of the checks configured to warn. Each rule's source is
/// written beside it.
pub fn validate(line: &InvoiceLine, source: Provenance, ctx: Context<'_>) -> Result<Accepted, Vec<Violation>> {
    let mut f = Problems::default();
    let checks = ctx.validation.checks;

    // RIV claim: the payment commitment (agreement chapter and point) and
    // the provider's name are required elements.
    for (field, value) in [
        ("agreement_chapter", &line.agreement_chapter),
        ("agreement_point", &line.agreement_point),
        ("provider_name", &line.provider_name),
    ] {
        if value.trim().is_empty() {
            f.reject(ReasonCode::MissingField, field, "is empty");
        }
    }

    // RIV claim: the document type, 380 invoice or 381 credit note (UNCL 1001).
    let invoice_type = InvoiceType::from_code(&line.invoice_type);
    if invoice_type.is_none() {
        f.reject(ReasonCode::InvalidInvoiceType, "invoice_type", "must be 380 (invoice) or 381 (credit note)");
    }
    // RIV claim: lines are numbered from 1; the line key is invoice id + line number.
    if line.line_number < 1 {
        f.reject(ReasonCode::InvalidLineNumber, "line_number", "must be 1 or more");
    }

    // Skatteverket (SKV 709): organisation numbers are ten digits with a
    // Luhn check digit.
    let seller = normalise_org_number(&line.seller_org_number);
    let buyer = normalise_org_number(&line.buyer_org_number);
    let provider = normalise_org_number(&line.provider_org_number);
    for (field, parsed) in
        [("seller_org_number", &seller), ("buyer_org_number", &buyer), ("provider_org_number", &provider)]
    {
        if parsed.is_none() {
            f.reject(ReasonCode::InvalidOrgNumber, field, "is not ten digits with a valid check digit");
        }
    }
    // Mervärdesskattelagen 17 kap 24 §: a unique number in one or more
    // series, any shape; at most EDIFACT's 35 characters. A seller's own
    // stricter numbering where configured (`validation.invoice_id_patterns`).
    if !is_invoice_id(&line.invoice_id) {
        let message = format!("must be 1 to {INVOICE_ID_MAX_CHARS} printable characters without surrounding spaces");
        f.reject(ReasonCode::InvalidInvoiceId, "invoice_id", &message);
    } else if let Some(pattern) = seller.as_ref().and_then(|s| ctx.validation.invoice_ids.get(s)) {
        match pattern.check(&line.invoice_id) {
            InvoiceIdMatch::Matches => {}
            InvoiceIdMatch::OtherSeller => f.reject(
                ReasonCode::InvoiceIdSellerMismatch,
                "invoice_id",
                "names another seller than seller_org_number",
            ),
            InvoiceIdMatch::DoesNotMatch => f.reject(
                ReasonCode::InvalidInvoiceId,
                "invoice_id",
                "does not follow the seller's configured numbering",
            ),
        }
    }

    // Skatteverket (personnummer SKV 704, samordningsnummer SKV 707) and the
    // regions' reservnummer formats (config), see `crate::patient`.
    let regions: Vec<&str> = [seller.as_deref(), buyer.as_deref()].into_iter().flatten().collect();
    let patient = match ctx.validation.patient_ids.parse(&line.patient_id, &regions) {
        Ok(p) => Some(p),
        Err(err) => {
            let code = match err {
                PatientIdError::Shape => ReasonCode::InvalidPatientId,
                PatientIdError::BirthDate => ReasonCode::InvalidBirthDate,
                PatientIdError::CheckDigit => ReasonCode::PatientIdCheckDigit,
            };
            f.reject(code, "patient_id", &err.to_string());
            None
        }
    };
    // No source: a consistency check between the id and the visit date.
    if let Some(p) = &patient {
        if p.born_after(line.visit_date) {
            f.unsourced(
                checks.visit_before_birth,
                ReasonCode::VisitBeforeBirth,
                "visit_date",
                "is before the patient's birth date",
            );
        }
        // No source: a plausibility check (the age is what the id says).
        if p.age_on(line.visit_date).is_some_and(|age| age > ctx.validation.max_age_years) {
            f.unsourced(checks.implausible_age, ReasonCode::ImplausibleAge, "patient_id", "gives an implausible age");
        }
    }

    // SCB: county codes (länskoder) and municipality codes (kommunkoder, four
    // digits whose first two are the county).

    if !is_county_code(&line.patient_county_code) {
        f.reject(ReasonCode::InvalidCountyCode, "patient_county_code", "is not an SCB county code");
    }
    if !is_municipality_code(&line.patient_municipality_code) {
        f.reject(ReasonCode::InvalidMunicipalityCode, "patient_municipality_code", "is not an SCB municipality code");
    } else if line.patient_municipality_code[..2] != line.patient_county_code {
        f.reject(ReasonCode::InvalidMunicipalityCode, "patient_municipality_code", "lies in another county");
    }
    // RIV claim: the patient's sex as ISO/IEC 5218 (0, 1, 2, 9), optional.
    let invoice_sex = match line.patient_sex {
        None => None,
        Some(code) => {
            let sex = Sex::from_iso5218(code);
            if sex.is_none() {
                f.reject(ReasonCode::InvalidSexCode, "patient_sex", "must be 0, 1, 2 or 9");
            }
            sex
        }
    };

    // RIV claim: care type (outpatient/inpatient) and visit type (new/return).
    if !["outpatient", "inpatient"].contains(&line.care_type.as_str()) {
        f.reject(ReasonCode::InvalidCareType, "care_type", "must be outpatient or inpatient");
    }
    if !["new", "return"].contains(&line.visit_type.as_str()) {
        f.reject(ReasonCode::InvalidVisitType, "visit_type", "must be new or return");
    }
    // Inera HSA: an HSA-id is SE + the organisation number + - + a local id.
    if !is_hsa_id(&line.performing_unit_hsa_id) {
        f.reject(
            ReasonCode::InvalidHsaId,
            "performing_unit_hsa_id",
            "is not an HSA-id (SE + org number + - + local id)",
        );
    }
    // RIV profession codes, as the region's tariff table (config) prices them.
    let tariff_class = ctx.tariffs.class_of(&line.profession_code);
    if tariff_class.is_none() {
        f.reject(ReasonCode::UnknownProfessionCode, "profession_code", "is not in the profession table");
    }
    // RIV claim: product category, two digits (04 contact fee).
    let product_ok = line.product_category.len() == 2 && line.product_category.bytes().all(|b| b.is_ascii_digit());
    if !product_ok {
        f.reject(ReasonCode::InvalidProductCategory, "product_category", "must be two digits");
    }

    // RIV claim: quantity at least 1; amounts are never negative, a credit
    // note says so by its type 381. Neither has an upper limit there: ours
    // (MAX_QUANTITY, MAX_LINE_AMOUNT_ORE) keep every sum in range.
    if !(1..=MAX_QUANTITY).contains(&line.quantity) {
        f.reject(ReasonCode::InvalidQuantity, "quantity", "must be from 1 to 10 000");
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
            f.reject(ReasonCode::NegativeAmount, field, "is negative; a credit note has type 381 and positive amounts");
        } else if amount > MAX_LINE_AMOUNT_ORE && field != "payable_amount_ore" {
            f.reject(ReasonCode::AmountOutOfRange, field, "is over 100 000 000 kr, more than any line can invoice");
        }
    }
    // No source for the arithmetic: a line whose amounts disagree is still
    // invoiced, and the rules judge its price (`wrong_price`).
    if !any_negative && line.quantity >= 1 {
        if line.unit_price_ore.checked_mul(i64::from(line.quantity)) != Some(line.gross_amount_ore) {
            f.unsourced(
                checks.gross_amount_mismatch,
                ReasonCode::GrossAmountMismatch,
                "gross_amount_ore",
                "is not quantity × unit price",
            );
        }
        if line.gross_amount_ore.checked_sub(line.patient_fee_ore) != Some(line.net_amount_ore) {
            f.unsourced(
                checks.net_amount_mismatch,
                ReasonCode::NetAmountMismatch,
                "net_amount_ore",
                "is not gross amount − patient fee",
            );
        }
    }

    // RIV credit reason 8: care date after the invoice date.
    if line.visit_date > line.invoice_date {
        f.reject(ReasonCode::CareDateAfterInvoiceDate, "visit_date", "is after the invoice date");
    }
    // Socialstyrelsen: ICD-10-SE diagnosis codes and KVÅ procedure codes.
    let bad = |codes: &[String], shaped: fn(&str) -> bool| -> Vec<String> {
        codes.iter().filter(|c| !shaped(c)).take(3).map(|c| format!("{:?}", text::printable(c, 20))).collect()
    };
    let diagnoses = bad(&line.diagnosis_codes, is_icd10_code);
    if !diagnoses.is_empty() {
        let message = format!("holds a code that is not ICD-10-SE shaped: {}", diagnoses.join(", "));
        f.reject(ReasonCode::InvalidDiagnosisCode, "diagnosis_codes", &message);
    }
    let procedures = bad(&line.procedure_codes, is_kva_code);
    if !procedures.is_empty() {
        let message = format!("holds a code that is not KVÅ shaped: {}", procedures.join(", "));
        f.reject(ReasonCode::InvalidProcedureCode, "procedure_codes", &message);
    }
    // No source: the channel is distans' own optional field (RIV has none).
    if line.contact_channel.as_deref().is_some_and(|c| !CONTACT_CHANNELS.contains(&c)) {
        f.unsourced(
            checks.invalid_contact_channel,
            ReasonCode::InvalidContactChannel,
            "contact_channel",
            "must be video, chat or phone",
        );
    }

    // No source limits free text; distans does, because people read it in
    // terminals, Teams, Slack and browsers: one line of printable text (no
    // C0/C1 control such as ESC or NUL, no bidirectional override) of at
    // most text::MAX_FREE_TEXT_CHARS characters. By default a warning and
    // the accepted line normalised (below, `free_text`); `reject` makes it
    // a dead letter. Fields with a shape of their own (codes, ids, amounts)
    // are checked by their shape above.
    for (field, value) in [
        ("provider_name", Some(&line.provider_name)),
        ("agreement_chapter", Some(&line.agreement_chapter)),
        ("agreement_point", Some(&line.agreement_point)),
        ("remittance_number", line.remittance_number.as_ref()),
        ("contact_channel", line.contact_channel.as_ref()),
    ] {
        if let Some(problem) = value.and_then(|v| free_text_problem(v)) {
            f.unsourced(checks.invalid_free_text, ReasonCode::InvalidFreeText, field, &problem);
        }
    }

    let (Some(invoice_type), Some(seller), Some(buyer), Some(provider), Some(patient), Some(tariff_class)) =
        (invoice_type, seller, buyer, provider, patient, tariff_class)
    else {
        return Err(f.rejected);
    };
    if !f.rejected.is_empty() {
        return Err(f.rejected);
    }

    let age_years = patient.age_on(line.visit_date);
    let line = EnrichedLine {
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
        remittance_number: line.remittance_number.as_deref().filter(|r| !r.trim().is_empty()).map(free_text),
        agreement_chapter: free_text(line.agreement_chapter.trim()),
        agreement_point: free_text(line.agreement_point.trim()),
        care_type: line.care_type.clone(),
        visit_type: line.visit_type.clone(),
        visit_date: line.visit_date,
        visit_time: line.visit_time,
        performing_unit_hsa_id: line.performing_unit_hsa_id.clone(),
        provider_org_number: provider,
        provider_name: free_text(&line.provider_name),
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
        contact_channel: line.contact_channel.as_deref().map(free_text),
        needs_assessment: line.needs_assessment,
        source,
        ingested_at_ms: ctx.ingested_at_ms,
    };
    Ok(Accepted { line, warnings: f.warnings })
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

    /// Validates the fixture changed by `mutate`: the codes of the
    /// violations, or of the warnings when the line is accepted.
    fn outcome(validation: &Validation, mutate: impl FnOnce(&mut InvoiceLine)) -> Result<Accepted, Vec<ReasonCode>> {
        violations(validation, mutate).map_err(|v| v.iter().map(|v| v.code).collect())
    }

    /// As [`outcome`], with the whole violations.
    fn violations(validation: &Validation, mutate: impl FnOnce(&mut InvoiceLine)) -> Result<Accepted, Vec<Violation>> {
        let tariffs = tariffs();
        let p = Pseudonymiser::new(&[7u8; 32]).expect("key");
        let ctx = Context { tariffs: &tariffs, pseudonymiser: &p, validation, ingested_at_ms: 1 };
        let source = Provenance { topic: "t".into(), partition: 0, offset: 0 };
        let mut l = line();
        mutate(&mut l);
        validate(&l, source, ctx)
    }

    #[test]
    fn a_code_of_the_wrong_shape_is_named() {
        let mutate = |l: &mut InvoiceLine| l.diagnosis_codes = vec!["J06.9".into(), "XYZ".into()];
        let Err(violations) = violations(&testing::validation(), mutate) else { panic!("rejected") };
        assert_eq!(violations[0].message, "holds a code that is not ICD-10-SE shaped: \"XYZ\"");
    }

    fn check(mutate: impl FnOnce(&mut InvoiceLine), expected: &[ReasonCode]) {
        let got = match outcome(&testing::validation(), mutate) {
            Ok(_) => vec![],
            Err(codes) => codes,
        };
        assert_eq!(got, expected);
    }

    /// A line the default validation accepts, with the codes of its warnings.
    fn warns(mutate: impl FnOnce(&mut InvoiceLine), expected: &[ReasonCode]) {
        let accepted = outcome(&testing::validation(), mutate).expect("accepted");
        let got: Vec<ReasonCode> = accepted.warnings.iter().map(|w| w.code).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_fixture_is_valid_and_enriched() {
        let tariffs = tariffs();
        let p = Pseudonymiser::new(&[7u8; 32]).expect("key");
        let validation = testing::validation();
        let ctx = Context { tariffs: &tariffs, pseudonymiser: &p, validation: &validation, ingested_at_ms: 1 };
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
        // The fixture's seller has the ZVF numbering configured.
        check(|l| l.invoice_id = "ZVF23210001152503".into(), &[InvalidInvoiceId]);
        check(|l| l.invoice_id = "ZVF23210001982503000042".into(), &[InvoiceIdSellerMismatch]);
        check(|l| l.invoice_id = "2025-000123".into(), &[InvalidInvoiceId]);
        // Other sellers may use any printable id of up to 35 characters.
        let other_seller = |l: &mut InvoiceLine| l.seller_org_number = "2321000198".into();
        for id in ["2025-000123", "F123456", "ZVF23210001152503000042", "1", &"9".repeat(35)] {
            check(
                |l| {
                    other_seller(l);
                    l.invoice_id = id.into();
                },
                &[],
            );
        }
        for id in ["", " F1", "F\u{7}1", &"9".repeat(36)] {
            check(
                |l| {
                    other_seller(l);
                    l.invoice_id = id.into();
                },
                &[InvalidInvoiceId],
            );
        }
        check(|l| l.patient_id = "198112189875".into(), &[PatientIdCheckDigit]);
        check(|l| l.patient_id = "19811218987".into(), &[InvalidPatientId]);
        check(|l| l.patient_id = "198113189876".into(), &[InvalidBirthDate]);
        check(|l| l.patient_id = "198500603835".into(), &[]);
        check(|l| l.patient_id = "R1234567".into(), &[]);
        check(|l| l.patient_id = "R123456".into(), &[InvalidPatientId]);
        check(|l| l.patient_id = "X1234567".into(), &[InvalidPatientId]);
        warns(|l| l.visit_date = "1981-12-17".parse().expect("date"), &[VisitBeforeBirth]);
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
        check(|l| l.quantity = MAX_QUANTITY + 1, &[InvalidQuantity]);
        // i64::MAX öre everywhere, and arithmetic that agrees: refused, never summed.
        check(
            |l| {
                (l.unit_price_ore, l.gross_amount_ore, l.net_amount_ore) = (i64::MAX, i64::MAX, i64::MAX);
                (l.patient_fee_ore, l.payable_amount_ore) = (0, i64::MAX);
            },
            &[AmountOutOfRange, AmountOutOfRange, AmountOutOfRange],
        );
        check(
            |l| {
                (l.unit_price_ore, l.gross_amount_ore, l.net_amount_ore) =
                    (MAX_LINE_AMOUNT_ORE, MAX_LINE_AMOUNT_ORE, MAX_LINE_AMOUNT_ORE);
                (l.patient_fee_ore, l.payable_amount_ore) = (0, MAX_LINE_AMOUNT_ORE);
            },
            &[],
        );
        warns(|l| l.gross_amount_ore = 49_999, &[GrossAmountMismatch, NetAmountMismatch]);
        warns(|l| l.net_amount_ore = 40_000, &[NetAmountMismatch]);
        check(|l| l.visit_date = l.invoice_date, &[]);
        check(|l| l.visit_date = "2025-04-01".parse().expect("date"), &[CareDateAfterInvoiceDate]);
        check(|l| l.diagnosis_codes.push("j06".into()), &[InvalidDiagnosisCode]);
        check(|l| l.procedure_codes.push("ZV05".into()), &[InvalidProcedureCode]);
        warns(|l| l.contact_channel = Some("fax".into()), &[InvalidContactChannel]);
        warns(|l| l.patient_id = "186001019873".into(), &[ImplausibleAge]);
        check(|l| l.provider_name = " ".into(), &[MissingField]);
    }

    /// Each newly accepted identity, as validation enriches it: kind, age
    /// group and sex (the fixture's visit is on 2025-03-02).
    #[test]
    fn newly_accepted_identities_are_enriched_from_what_they_say() {
        use crate::PatientIdKind::{Reserve, Samordningsnummer};
        let cases = [
            // Month and day unknown, born 1985: 39 (not 40) on 2025-03-02.
            ("198500603835", Samordningsnummer, AgeGroup::Age19To39, Sex::Male),
            // Day unknown, February 1985: 40 once 28 February has passed.
            ("198502609848", Samordningsnummer, AgeGroup::Age40To64, Sex::Female),
            // Month unknown, day 1: the birthday counts on 1 December, so 39.
            ("198500619856", Samordningsnummer, AgeGroup::Age19To39, Sex::Male),
            // A reservnummer of the configured test format: sex only.
            ("r1234562", Reserve, AgeGroup::Unknown, Sex::Female),
        ];
        for (id, kind, group, sex) in cases {
            let accepted = outcome(&testing::validation(), |l| {
                l.patient_id = id.into();
                l.patient_sex = None;
            })
            .unwrap_or_else(|codes| panic!("{id}: {codes:?}"));
            let e = accepted.line;
            assert_eq!((e.patient_id_kind, e.age_group, e.sex), (kind, group, sex), "{id}");
        }
    }

    #[test]
    fn unsourced_checks_follow_their_mode() {
        use ReasonCode::*;
        let mut settings = ValidationSettings::default();
        let fax = |l: &mut InvoiceLine| l.contact_channel = Some("fax".into());
        settings.checks.invalid_contact_channel = CheckMode::Reject;
        let rejecting = Validation::new(&settings).expect("valid");
        assert_eq!(outcome(&rejecting, fax).map(|_| ()), Err(vec![InvalidContactChannel]));
        settings.checks.invalid_contact_channel = CheckMode::Off;
        let off = Validation::new(&settings).expect("valid");
        assert_eq!(outcome(&off, fax).map(|a| a.warnings.len()), Ok(0));
    }

    #[test]
    fn bad_settings_are_all_reported() {
        let settings = ValidationSettings {
            invoice_id_patterns: [("123".to_string(), "([".to_string())].into(),
            ..ValidationSettings::default()
        };
        assert_eq!(settings.problems().len(), 2, "{:?}", settings.problems());
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

    /// Hostile free text is a dead letter with its own reason, the
    /// character named by code point, the text itself never quoted.
    #[test]
    fn free_text_is_one_printable_line_of_limited_length() {
        use ReasonCode::InvalidFreeText;
        let mut settings = ValidationSettings::default();
        settings.checks.invalid_free_text = CheckMode::Reject;
        let rejecting = Validation::new(&settings).expect("valid");
        let hostile = [
            ("clear screen", "Vård\u{1b}[2J\u{1b}[HAB", "U+001B at character 5"),
            ("window title", "Vård\u{1b}]0;owned\u{7}AB", "U+001B"),
            ("OSC-8 link", "\u{1b}]8;;https://evil.example\u{1b}\\Klicka\u{1b}]8;;\u{1b}\\", "U+001B at character 1"),
            ("NUL", "Vård\0AB", "U+0000"),
            ("right-to-left override", "Vård\u{202E}BA gnidloh", "U+202E"),
            ("8-bit CSI", "Vård\u{9b}2J", "U+009B"),
            ("line break", "Vård\nAB", "U+000A"),
        ];
        let tariffs = tariffs();
        let p = Pseudonymiser::new(&[7u8; 32]).expect("key");
        let source = Provenance { topic: "t".into(), partition: 0, offset: 0 };
        for (case, name, named) in hostile {
            // reject: a dead letter naming the character, never quoting the text.
            let ctx = Context { tariffs: &tariffs, pseudonymiser: &p, validation: &rejecting, ingested_at_ms: 1 };
            let line = InvoiceLine { provider_name: name.into(), ..line() };
            let violations = validate(&line, source.clone(), ctx).err().unwrap_or_default();
            assert_eq!(violations.iter().map(|v| v.code).collect::<Vec<_>>(), [InvalidFreeText], "{case}");
            assert!(violations[0].message.contains(named), "{case}: {violations:?}");
            assert!(violations[0].message.is_ascii(), "{case}: the text is not quoted: {violations:?}");
            // By default: accepted with a warning, the name normalised.
            let validation = testing::validation();
            let ctx = Context { tariffs: &tariffs, pseudonymiser: &p, validation: &validation, ingested_at_ms: 1 };
            let accepted = validate(&line, source.clone(), ctx).expect("accepted");
            assert_eq!(accepted.warnings.iter().map(|w| w.code).collect::<Vec<_>>(), [InvalidFreeText], "{case}");
            assert!(
                !accepted.line.provider_name.chars().any(text::is_hostile),
                "{case}: {:?}",
                accepted.line.provider_name
            );
            assert!(accepted.line.provider_name.contains(text::REPLACEMENT), "{case}");
        }
        let rejected = |mutate: fn(&mut InvoiceLine)| outcome(&rejecting, mutate).err().unwrap_or_default();
        assert_eq!(rejected(|l| l.provider_name = "x".repeat(900_000)), [InvalidFreeText]);
        assert_eq!(rejected(|l| l.provider_name = "å".repeat(text::MAX_FREE_TEXT_CHARS)), []);
        assert_eq!(rejected(|l| l.provider_name = "å".repeat(text::MAX_FREE_TEXT_CHARS + 1)), [InvalidFreeText]);
        assert_eq!(rejected(|l| l.provider_name = "<!channel> & <@U024BE7LH>".into()), [], "escaped at the outputs");
        assert_eq!(rejected(|l| l.agreement_point = "4.1\u{1b}[2J".into()), [InvalidFreeText]);
        assert_eq!(rejected(|l| l.remittance_number = Some("R\u{202E}1".into())), [InvalidFreeText]);
        assert_eq!(rejected(|l| l.contact_channel = Some("video\0".into())), [InvalidFreeText]);
        // A 900 KB name is accepted by default as 256 characters, not carried whole.
        let long = outcome(&testing::validation(), |l| l.provider_name = "x".repeat(900_000)).expect("accepted");
        assert_eq!(long.line.provider_name.chars().count(), text::MAX_FREE_TEXT_CHARS);
        let off = Validation::new(&ValidationSettings {
            checks: CheckModes { invalid_free_text: CheckMode::Off, ..CheckModes::default() },
            ..ValidationSettings::default()
        })
        .expect("valid");
        let quiet = outcome(&off, |l| l.provider_name = "Vård\0".into()).expect("accepted");
        assert!(quiet.warnings.is_empty() && quiet.line.provider_name == "Vård\u{FFFD}", "normalised even when off");
    }
}
