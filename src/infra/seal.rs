//! Opaque tokens the server hands out and takes back (pagination cursors): sealed with a key
//! derived from the server secret, so a client can neither read nor forge them.
//!
//! The construction is a synthetic-IV scheme built from HMAC-SHA256 alone: the IV is a MAC of
//! the plaintext (so equal plaintexts seal to equal tokens, and a tampered token fails the
//! check), and the plaintext is XORed with a keystream derived from that IV under a second key.
//! Plaintexts are at most 32 bytes (one HMAC block of keystream).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the synthetic IV (and tag) at the front of every sealed token.
const IV_LEN: usize = 16;
/// The longest plaintext a token can hold.
pub const MAX_PLAINTEXT: usize = 32;

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// An HMAC keyed once: each use clones the keyed state instead of hashing the key again.
fn keyed(key: &[u8; 32]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length")
}

fn hmac(keyed: &Hmac<Sha256>, message: &[u8]) -> [u8; 32] {
    let mut mac = keyed.clone();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Seals and opens tokens of one purpose (the purpose is part of the key, so a token made for
/// one use is refused by another).
#[derive(Clone)]
pub struct Sealer {
    mac: Hmac<Sha256>,
    stream: Hmac<Sha256>,
}

impl Sealer {
    pub fn new(secret: &[u8], purpose: &str) -> Self {
        Sealer {
            mac: keyed(&derive(
                secret,
                format!("pupmatch seal mac v1 {purpose}").as_bytes(),
            )),
            stream: keyed(&derive(
                secret,
                format!("pupmatch seal stream v1 {purpose}").as_bytes(),
            )),
        }
    }

    /// The sealed bytes of `plaintext` (at most [`MAX_PLAINTEXT`] bytes).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        assert!(
            plaintext.len() <= MAX_PLAINTEXT,
            "plaintext too long to seal"
        );
        let iv = &hmac(&self.mac, plaintext)[..IV_LEN];
        let stream = hmac(&self.stream, iv);
        let mut out = iv.to_vec();
        out.extend(plaintext.iter().zip(stream).map(|(p, k)| p ^ k));
        out
    }

    /// The plaintext of a token this sealer made; None for anything else.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < IV_LEN || sealed.len() > IV_LEN + MAX_PLAINTEXT {
            return None;
        }
        let (iv, body) = sealed.split_at(IV_LEN);
        let stream = hmac(&self.stream, iv);
        let plaintext: Vec<u8> = body.iter().zip(stream).map(|(c, k)| c ^ k).collect();
        let mut mac = self.mac.clone();
        mac.update(&plaintext);
        mac.verify_truncated_left(iv).ok()?;
        Some(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_to_its_plaintext_and_hides_it() {
        let sealer = Sealer::new(b"a secret of enough length, really", "cursor");
        let plain = b"\x00\x2a0123456789abcdef";
        let sealed = sealer.seal(plain);
        assert_eq!(sealer.open(&sealed).as_deref(), Some(&plain[..]));
        assert!(!sealed.windows(8).any(|w| plain.windows(8).any(|p| p == w)));
        assert_eq!(sealer.seal(plain), sealed, "deterministic");
    }

    #[test]
    fn a_tampered_or_foreign_token_does_not_open() {
        let sealer = Sealer::new(b"a secret of enough length, really", "cursor");
        let sealed = sealer.seal(b"hello");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(sealer.open(&bad), None, "byte {i} flipped");
        }
        assert_eq!(sealer.open(&sealed[..sealed.len() - 1]), None);
        assert_eq!(sealer.open(b"short"), None);
        let other = Sealer::new(b"a secret of enough length, really", "other");
        assert_eq!(other.open(&sealed), None, "another purpose's key");
    }
}
