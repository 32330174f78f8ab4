//! Pseudonymisation of patient ids with a keyed hash (HMAC-SHA-256).
//!
//! The same key gives the same pseudonym for the same patient, so lines can
//! be counted per patient without the personnummer ever leaving the
//! ingester. Without the key, a pseudonym cannot be reversed by trying all
//! personnummer.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::PatientId;

/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser { key: <redacted> }")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("pseudonymisation key must be at least {MIN_KEY_LEN} bytes, got {0}")]
pub struct KeyTooShort(pub usize);

impl Pseudonymiser {
    pub fn new(key: &[u8]) -> Result<Pseudonymiser, KeyTooShort> {
        if key.len() < MIN_KEY_LEN {
            return Err(KeyTooShort(key.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| KeyTooShort(key.len()))?;
        Ok(Pseudonymiser { mac })
    }

    /// 128 bits of the HMAC as 32 lower-case hex digits.
    pub fn pseudonymise(&self, patient: &PatientId) -> String {
        let mut mac = self.mac.clone();
        mac.update(patient.canonical().as_bytes());
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn stable_keyed_and_opaque() {
        let p = Pseudonymiser::new(KEY).expect("key long enough");
        let a = PatientId::parse("198112189876").expect("valid");
        let same = PatientId::parse("19811218-9876").expect("valid");
        let other = PatientId::parse("198112789873").expect("valid");
        let pa = p.pseudonymise(&a);
        assert_eq!(pa.len(), 32);
        assert_eq!(pa, p.pseudonymise(&same), "formatting does not change the pseudonym");
        assert_ne!(pa, p.pseudonymise(&other));
        assert!(!pa.contains("9876"));
        let other_key = Pseudonymiser::new(b"fedcba9876543210fedcba9876543210").expect("key");
        assert_ne!(pa, other_key.pseudonymise(&a), "another key, another pseudonym");
    }

    #[test]
    fn short_key_rejected() {
        assert_eq!(Pseudonymiser::new(b"short").map(|_| ()), Err(KeyTooShort(5)));
        assert!(!format!("{:?}", Pseudonymiser::new(KEY).expect("key")).contains("0123"));
    }
}
