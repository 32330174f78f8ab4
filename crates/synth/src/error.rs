//! Why nothing was generated.

/// Options or tariffs the generator cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A county code the generator has no profile for, with those it knows.
    #[error("no region profile for county {county:?}; known: {known}")]
    UnknownRegion { county: String, known: String },
    /// A share of invalid or implausible lines outside 0 to 0.5.
    #[error("{name} must be between 0 and 0.5, got {share}")]
    ShareOutOfRange { name: &'static str, share: f64 },
    /// A year chrono cannot represent.
    #[error("year out of range")]
    YearOutOfRange,
    /// A profession code of the mix that the tariff table does not classify.
    #[error("profession {0} not in the tariff table")]
    UnknownProfession(String),
    /// No tariff of this class (e.g. "physician") in force on the visit date.
    #[error("no {class} tariff on {date}")]
    NoTariffOn { class: &'static str, date: chrono::NaiveDate },
    /// No tariff of this class in force when an anomaly was injected.
    #[error("no {0} tariff")]
    NoTariff(&'static str),
}
