//! Who a certificate says its holder is, in a line fit for a log: the
//! subject's names, or its first alternative name. webpki (rustls's own
//! parser) takes the certificate apart; the subject's attributes are read
//! here, with the few lines of DER that takes, rather than with a full
//! X.509 crate.

use std::fmt::Write;

use rustls::pki_types::CertificateDer;
use webpki::EndEntityCert;

/// The subject attributes shown, in this order: common name,
/// organization, organizational unit (OIDs 2.5.4.3, 2.5.4.10, 2.5.4.11).
const SHOWN: [(&[u8], &str); 3] = [
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
];

/// `CN=..., O=..., OU=...` from the certificate's subject; if it has none
/// of those, its first DNS name (`DNS:...`) or URI (`URI:...`). `None` if
/// it has neither, or is no certificate. Control characters and quotes
/// in the names are escaped: they come from the peer.
pub(super) fn certificate_name(cert: &CertificateDer<'_>) -> Option<String> {
    let parsed = EndEntityCert::try_from(cert).ok()?;
    let mut name = String::new();
    for (oid, label) in SHOWN {
        for value in attribute_values(parsed.subject(), oid) {
            let separator = if name.is_empty() { "" } else { ", " };
            let _ = write!(name, "{separator}{label}={}", value.escape_debug());
        }
    }
    if !name.is_empty() {
        return Some(name);
    }
    let dns = parsed
        .valid_dns_names()
        .map(|dns| format!("DNS:{}", dns.escape_debug()));
    let uri = parsed
        .valid_uri_names()
        .map(|uri| format!("URI:{}", uri.escape_debug()));
    dns.chain(uri).next()
}

/// The string values of the attributes of type `oid` in a subject: the
/// contents of a DER `Name`, a sequence of sets of `(OID, value)`
/// sequences. Values of a type that is no string are skipped.
fn attribute_values<'a>(subject: &'a [u8], oid: &'a [u8]) -> impl Iterator<Item = String> + 'a {
    elements(subject)
        .filter(|(tag, _)| *tag == SET)
        .flat_map(|(_, set)| elements(set))
        .filter(|(tag, _)| *tag == SEQUENCE)
        .filter_map(move |(_, pair)| {
            let mut parts = elements(pair);
            let (OBJECT_IDENTIFIER, found) = parts.next()? else {
                return None;
            };
            if found != oid {
                return None;
            }
            let (tag, value) = parts.next()?;
            string_value(tag, value)
        })
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OBJECT_IDENTIFIER: u8 = 0x06;

/// A DER string as text: UTF8String, PrintableString, IA5String,
/// TeletexString (read as UTF-8, lossily) and BMPString (UTF-16).
fn string_value(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 | 0x14 => Some(String::from_utf8_lossy(value).into_owned()),
        0x1e => {
            let units = value
                .chunks_exact(2)
                .map(|unit| u16::from_be_bytes([unit[0], unit[1]]));
            Some(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or('\u{fffd}'))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The DER elements one after another in `input`, as (tag, contents);
/// ends at the first that is malformed.
fn elements(mut input: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (tag, contents, rest) = element(input)?;
        input = rest;
        Some((tag, contents))
    })
}

/// The first DER element of `input`: its (single-byte) tag, its contents,
/// and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(params: rcgen::CertificateParams) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn named(pairs: &[(rcgen::DnType, &str)], alt_names: &[&str]) -> CertificateDer<'static> {
        let alt_names = alt_names.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        let mut params = rcgen::CertificateParams::new(alt_names).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        for (kind, value) in pairs {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        certificate(params)
    }

    #[test]
    fn the_subjects_names_come_first() {
        use rcgen::DnType;
        let cert = named(
            &[
                (DnType::CountryName, "FR"),
                (DnType::OrganizationName, "Example"),
                (DnType::CommonName, "alice"),
            ],
            &["alice.example"],
        );
        assert_eq!(certificate_name(&cert).as_deref(), Some("CN=alice, O=Example"));
    }

    #[test]
    fn without_them_the_first_alternative_name() {
        let cert = named(
            &[(rcgen::DnType::CountryName, "FR")],
            &["bob.example", "other.example"],
        );
        assert_eq!(certificate_name(&cert).as_deref(), Some("DNS:bob.example"));
        assert_eq!(certificate_name(&named(&[], &[])), None);
    }

    #[test]
    fn what_the_peer_wrote_is_escaped_and_garbage_is_no_name() {
        let cert = named(&[(rcgen::DnType::CommonName, "eve\n[INFO] forged")], &[]);
        assert_eq!(certificate_name(&cert).as_deref(), Some("CN=eve\\n[INFO] forged"));
        assert_eq!(
            certificate_name(&CertificateDer::from(vec![0x30, 0x03, 0x01])),
            None
        );
    }

    #[test]
    fn long_form_lengths_are_read() {
        let long = vec![b'x'; 300];
        let mut der = vec![0x04, 0x82, 0x01, 0x2c];
        der.extend_from_slice(&long);
        der.push(0x05);
        der.push(0x00);
        let found: Vec<_> = elements(&der).collect();
        assert_eq!(found, vec![(0x04, &long[..]), (0x05, &[][..])]);
        assert_eq!(element(&[0x04, 0x82, 0x01]), None);
    }
}
