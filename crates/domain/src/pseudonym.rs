//! Pseudonymisation of patient ids with a keyed hash (HMAC-SHA-256).
//!
//! The same key gives the same pseudonym for the same patient, so lines can
//! be counted per patient without the personnummer ever leaving the
//! ingester. Without the key, a pseudonym cannot be reversed by trying all
//! personnummer.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::PatientId;

/// What the key's fingerprint is the HMAC of.
pub const FINGERPRINT_MESSAGE: &[u8] = b"distans pseudonym key fingerprint";

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

    /// The key's fingerprint: 128 bits of HMAC-SHA-256(key,
    /// [`FINGERPRINT_MESSAGE`]) as 32 lower-case hex digits. Stored with the
    /// data so that a service started with another key is noticed. Keyed,
    /// never a plain hash of the key; the message is no patient id, so the
    /// fingerprint is no pseudonym.
    pub fn fingerprint(&self) -> String {
        let mut mac = self.mac.clone();
        mac.update(FINGERPRINT_MESSAGE);
        hex::encode(&mac.finalize().into_bytes()[..16])
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
    fn the_fingerprint_tells_keys_apart_and_is_no_plain_hash() {
        use sha2::Digest;
        let a = Pseudonymiser::new(KEY).expect("key").fingerprint();
        assert_eq!(a, Pseudonymiser::new(KEY).expect("key").fingerprint(), "stable");
        assert_eq!(a.len(), 32);
        assert_ne!(a, Pseudonymiser::new(b"fedcba9876543210fedcba9876543210").expect("key").fingerprint());
        assert!(!hex::encode(Sha256::digest(KEY)).starts_with(&a), "not SHA-256 of the key");
        // Known answer: HMAC-SHA-256 of the message under KEY.
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("key");
        mac.update(b"distans pseudonym key fingerprint");
        assert_eq!(a, hex::encode(&mac.finalize().into_bytes()[..16]));
    }

    #[test]
    fn short_key_rejected() {
        assert_eq!(Pseudonymiser::new(b"short").map(|_| ()), Err(KeyTooShort(5)));
        assert!(!format!("{:?}", Pseudonymiser::new(KEY).expect("key")).contains("0123"));
    }
}
