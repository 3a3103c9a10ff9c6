//! Certificates as PEM: the armor, base64, and the certificate id AWS IoT
//! derives from them (the SHA-256 of the DER bytes, in lowercase hex).
//!
//! The simulator does not parse X.509. A PEM is accepted when its armor is
//! `-----BEGIN CERTIFICATE-----` / `-----END CERTIFICATE-----` and its body is
//! base64 of a DER SEQUENCE whose length header matches the bytes.

use sha2::{Digest, Sha256};

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (whitespace ignored); `None` if it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let chars: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if chars.is_empty() || !chars.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    for (i, quad) in chars.chunks(4).enumerate() {
        let last = i == chars.len() / 4 - 1;
        let mut n = 0u32;
        let mut pad = 0;
        for (j, &c) in quad.iter().enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                // padding only at the end of the last quad
                b'=' if last && j >= 2 => {
                    pad += 1;
                    0
                }
                _ => return None,
            };
            if pad > 0 && c != b'=' {
                return None;
            }
            n = (n << 6) | u32::from(v);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// Lowercase hex of the SHA-256 of `der`.
pub fn sha256_hex(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// PEM armor around `der`, 64 base64 characters a line.
pub fn to_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = String::from(BEGIN);
    out.push('\n');
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// The DER bytes inside a PEM certificate, or why it is not one.
pub fn der_of(pem: &str) -> Result<Vec<u8>, String> {
    let text = pem.trim();
    let body = text
        .strip_prefix(BEGIN)
        .and_then(|rest| rest.strip_suffix(END))
        .ok_or("the certificate is not PEM: expected -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----")?;
    let der = base64_decode(body).ok_or("the certificate's PEM body is not base64")?;
    if der_sequence_len(&der) != Some(der.len()) {
        return Err("the certificate is not a DER-encoded X.509 structure".into());
    }
    Ok(der)
}

/// The total length a DER SEQUENCE header announces (tag 0x30 + length).
fn der_sequence_len(der: &[u8]) -> Option<usize> {
    if der.len() < 2 || der[0] != 0x30 {
        return None;
    }
    let first = usize::from(der[1]);
    if first < 0x80 {
        return Some(2 + first);
    }
    let n = first & 0x7f;
    if n == 0 || n > 4 || der.len() < 2 + n {
        return None;
    }
    let len = der[2..2 + n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some(2 + n + len)
}

/// The certificate id AWS IoT gives a PEM certificate: SHA-256 of its DER bytes.
pub fn certificate_id_of(pem: &str) -> Result<String, String> {
    der_of(pem).map(|der| sha256_hex(&der))
}

/// A DER SEQUENCE holding `content`.
fn der_sequence(content: &[u8]) -> Vec<u8> {
    let mut der = vec![0x30];
    let len = content.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(content);
    der
}

/// A deterministic fake certificate for tests: `(id, pem)` where `id` is the
/// SHA-256 of the DER bytes inside `pem`, as AWS IoT computes it. The bytes
/// are a DER SEQUENCE (not a real X.509 certificate); the simulator and the
/// AWS CLI accept them.
pub fn fake_certificate(n: u64) -> (String, String) {
    let mut content = b"iot-sim fake certificate #".to_vec();
    content.extend_from_slice(n.to_string().as_bytes());
    // some bulk, so that the PEM spans several lines like a real one
    let mut x = n ^ 0x9E37_79B9_7F4A_7C15;
    for _ in 0..48 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        content.extend_from_slice(&x.to_be_bytes()[..4]);
    }
    let der = der_sequence(&content);
    (sha256_hex(&der), to_pem(&der))
}

/// A PEM for a certificate seeded without one: deterministic per id, but its
/// hash is not the id.
pub fn generated_pem(id: &str) -> String {
    let mut content = b"iot-sim seeded certificate ".to_vec();
    content.extend_from_slice(id.as_bytes());
    to_pem(&der_sequence(&content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 5) as u8).collect();
            let enc = base64_encode(&data);
            if len > 0 {
                assert_eq!(base64_decode(&enc).unwrap(), data, "{enc}");
            }
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert!(base64_decode("TW=u").is_none());
        assert!(base64_decode("TWF").is_none());
        assert!(base64_decode("T*Fu").is_none());
    }

    #[test]
    fn fake_certificates_hash_to_their_id() {
        let (id, pem) = fake_certificate(7);
        assert_eq!(id.len(), 64);
        assert!(crate::validate::is_certificate_id(&id));
        assert_eq!(certificate_id_of(&pem).unwrap(), id);
        assert_eq!(fake_certificate(7), (id.clone(), pem.clone()));
        assert_ne!(fake_certificate(8).0, id);
        assert!(pem.lines().count() > 3);
        let seeded = generated_pem(&id);
        assert!(certificate_id_of(&seeded).is_ok());
        assert_ne!(certificate_id_of(&seeded).unwrap(), id);
    }

    #[test]
    fn malformed_pems() {
        assert!(certificate_id_of("hello").is_err());
        assert!(
            certificate_id_of("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----")
                .is_err()
        );
        // base64, but not a DER sequence
        assert!(
            certificate_id_of("-----BEGIN CERTIFICATE-----\nTWFu\n-----END CERTIFICATE-----")
                .is_err()
        );
        let (_, pem) = fake_certificate(1);
        let cut: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .skip(1)
            .collect();
        assert!(certificate_id_of(&format!("{BEGIN}\n{cut}\n{END}")).is_err());
    }
}
