//! v2 Type-Length-Value extensions: the registered types, the rules the
//! specification gives their values, and the SSL TLV's structure.

use std::fmt;
use std::io;

/// One v2 TLV: a type byte and its value (at most 65,535 bytes).
///
/// Every TLV of a parsed header is kept, in wire order, unknown types and
/// `NOOP` padding included, so a header re-encodes to the same bytes (and
/// the same CRC32C). The registered types are associated constants.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tlv {
    /// The type byte (`PP2_TYPE_*`).
    pub kind: u8,
    /// The value, without the 3-byte type and length prefix.
    pub value: Vec<u8>,
}

impl Tlv {
    /// `PP2_TYPE_ALPN`: the negotiated application protocol (bytes).
    pub const ALPN: u8 = 0x01;
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (TLS SNI), UTF-8.
    pub const AUTHORITY: u8 = 0x02;
    /// `PP2_TYPE_CRC32C`: a CRC32C of the whole header, 4 bytes, verified
    /// by the parser and filled in by the encoder.
    pub const CRC32C: u8 = 0x03;
    /// `PP2_TYPE_NOOP`: padding, ignored.
    pub const NOOP: u8 = 0x04;
    /// `PP2_TYPE_UNIQUE_ID`: an opaque connection ID of at most 128 bytes.
    pub const UNIQUE_ID: u8 = 0x05;
    /// `PP2_TYPE_SSL`: TLS facts of the client's connection; see [`SslInfo`].
    pub const SSL: u8 = 0x20;
    /// `PP2_TYPE_NETNS`: the network namespace's name, US-ASCII.
    pub const NETNS: u8 = 0x30;

    /// The longest value a TLV's 16-bit length can carry.
    pub const MAX_VALUE_LEN: usize = u16::MAX as usize;
    /// The longest `UNIQUE_ID` value the specification allows.
    pub const MAX_UNIQUE_ID_LEN: usize = 128;

    /// A TLV of `kind` with `value`.
    pub fn new(kind: u8, value: impl Into<Vec<u8>>) -> Self {
        Tlv {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Debug for Tlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tlv(0x{:02x}, \"{}\")", self.kind, self.value.escape_ascii())
    }
}

/// The facts of a `PP2_TYPE_SSL` TLV: how the client connected to the
/// proxy over TLS. Borrowed from the header it came from.
///
/// The strings are the sub-TLVs the proxy chose to send; a missing one is
/// `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SslInfo<'a> {
    /// The `PP2_CLIENT_*` bit field: [`CLIENT_SSL`](Self::CLIENT_SSL),
    /// [`CLIENT_CERT_CONN`](Self::CLIENT_CERT_CONN),
    /// [`CLIENT_CERT_SESS`](Self::CLIENT_CERT_SESS).
    pub client: u8,
    /// Zero if the client presented a certificate and it was verified,
    /// non-zero otherwise.
    pub verify: u32,
    /// `PP2_SUBTYPE_SSL_VERSION`: the TLS version, e.g. "TLSv1.3".
    pub version: Option<&'a str>,
    /// `PP2_SUBTYPE_SSL_CN`: the Common Name of the client certificate's
    /// subject.
    pub common_name: Option<&'a str>,
    /// `PP2_SUBTYPE_SSL_CIPHER`: the cipher, e.g. "ECDHE-RSA-AES128-GCM-SHA256".
    pub cipher: Option<&'a str>,
    /// `PP2_SUBTYPE_SSL_SIG_ALG`: the algorithm that signed the proxy's
    /// certificate, e.g. "RSA-SHA256".
    pub sig_alg: Option<&'a str>,
    /// `PP2_SUBTYPE_SSL_KEY_ALG`: the proxy certificate's key algorithm,
    /// e.g. "RSA2048".
    pub key_alg: Option<&'a str>,
    /// `PP2_SUBTYPE_SSL_GROUP`: the key exchange group, e.g. "secp256r1".
    pub group: Option<&'a str>,
    /// `PP2_SUBTYPE_SSL_SIG_SCHEME`: the handshake signature scheme, e.g.
    /// "rsa_pss_rsae_sha256".
    pub sig_scheme: Option<&'a str>,
    /// `PP2_SUBTYPE_SSL_CLIENT_CERT`: the client certificate, DER.
    pub client_cert: Option<&'a [u8]>,
}

impl<'a> SslInfo<'a> {
    /// `PP2_CLIENT_SSL`: the client connected over TLS.
    pub const CLIENT_SSL: u8 = 0x01;
    /// `PP2_CLIENT_CERT_CONN`: the client sent a certificate on this connection.
    pub const CLIENT_CERT_CONN: u8 = 0x02;
    /// `PP2_CLIENT_CERT_SESS`: the client sent a certificate at least once
    /// in this TLS session.
    pub const CLIENT_CERT_SESS: u8 = 0x04;

    /// `PP2_SUBTYPE_SSL_VERSION`.
    pub const VERSION: u8 = 0x21;
    /// `PP2_SUBTYPE_SSL_CN`.
    pub const CN: u8 = 0x22;
    /// `PP2_SUBTYPE_SSL_CIPHER`.
    pub const CIPHER: u8 = 0x23;
    /// `PP2_SUBTYPE_SSL_SIG_ALG`.
    pub const SIG_ALG: u8 = 0x24;
    /// `PP2_SUBTYPE_SSL_KEY_ALG`.
    pub const KEY_ALG: u8 = 0x25;
    /// `PP2_SUBTYPE_SSL_GROUP`.
    pub const GROUP: u8 = 0x26;
    /// `PP2_SUBTYPE_SSL_SIG_SCHEME`.
    pub const SIG_SCHEME: u8 = 0x27;
    /// `PP2_SUBTYPE_SSL_CLIENT_CERT`.
    pub const CLIENT_CERT: u8 = 0x28;

    /// The client connected to the proxy over TLS.
    pub fn is_tls(&self) -> bool {
        self.client & Self::CLIENT_SSL != 0
    }

    /// The client presented a certificate on this connection.
    pub fn cert_on_connection(&self) -> bool {
        self.client & Self::CLIENT_CERT_CONN != 0
    }

    /// The client presented a certificate at least once in its TLS session.
    pub fn cert_in_session(&self) -> bool {
        self.client & Self::CLIENT_CERT_SESS != 0
    }

    /// The client presented a certificate and the proxy verified it.
    pub fn cert_verified(&self) -> bool {
        self.verify == 0
    }

    /// Reads an SSL TLV's value: the client byte, the 32-bit verify result,
    /// then sub-TLVs that must fill the rest exactly. The first of a
    /// repeated sub-TLV wins; unknown sub-types are skipped.
    pub(crate) fn parse(value: &'a [u8]) -> Result<Self, String> {
        if value.len() < 5 {
            return Err(format!(
                "SSL TLV of {} bytes, shorter than its 5-byte client and verify fields",
                value.len()
            ));
        }
        let mut info = SslInfo {
            client: value[0],
            verify: u32::from_be_bytes([value[1], value[2], value[3], value[4]]),
            ..SslInfo::default()
        };
        for sub in TlvIter::new(&value[5..]) {
            let (kind, sub_value) = sub.map_err(|e| format!("SSL TLV: {e}"))?;
            let text = |slot: &mut Option<&'a str>, ascii: bool| -> Result<(), String> {
                let s = std::str::from_utf8(sub_value)
                    .ok()
                    .filter(|s| !ascii || s.is_ascii())
                    .ok_or_else(|| {
                        format!(
                            "SSL sub-TLV 0x{kind:02x} \"{}\" is not {}",
                            sub_value.escape_ascii(),
                            if ascii { "US-ASCII" } else { "UTF-8" }
                        )
                    })?;
                slot.get_or_insert(s);
                Ok(())
            };
            match kind {
                Self::VERSION => text(&mut info.version, true)?,
                Self::CN => text(&mut info.common_name, false)?,
                Self::CIPHER => text(&mut info.cipher, true)?,
                Self::SIG_ALG => text(&mut info.sig_alg, true)?,
                Self::KEY_ALG => text(&mut info.key_alg, true)?,
                Self::GROUP => text(&mut info.group, true)?,
                Self::SIG_SCHEME => text(&mut info.sig_scheme, true)?,
                Self::CLIENT_CERT => {
                    info.client_cert.get_or_insert(sub_value);
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// The SSL TLV's value for these facts (sub-TLVs in sub-type order),
    /// for [`ProxyHeader::with_tlv`](super::ProxyHeader::with_tlv) with
    /// [`Tlv::SSL`]. Fails if a field is longer than a TLV can carry or a
    /// string is not of the encoding the specification requires
    /// (`InvalidInput`).
    pub fn to_tlv_value(&self) -> io::Result<Vec<u8>> {
        self.encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    fn encode(&self) -> Result<Vec<u8>, String> {
        let mut out = vec![self.client];
        out.extend_from_slice(&self.verify.to_be_bytes());
        let subs: [(u8, Option<&[u8]>); 8] = [
            (Self::VERSION, self.version.map(str::as_bytes)),
            (Self::CN, self.common_name.map(str::as_bytes)),
            (Self::CIPHER, self.cipher.map(str::as_bytes)),
            (Self::SIG_ALG, self.sig_alg.map(str::as_bytes)),
            (Self::KEY_ALG, self.key_alg.map(str::as_bytes)),
            (Self::GROUP, self.group.map(str::as_bytes)),
            (Self::SIG_SCHEME, self.sig_scheme.map(str::as_bytes)),
            (Self::CLIENT_CERT, self.client_cert),
        ];
        for (kind, value) in subs {
            if let Some(value) = value {
                push_tlv(&mut out, kind, value)?;
            }
        }
        if out.len() > Tlv::MAX_VALUE_LEN {
            return Err(format!(
                "SSL TLV of {} bytes, over {}",
                out.len(),
                Tlv::MAX_VALUE_LEN
            ));
        }
        SslInfo::parse(&out)?;
        Ok(out)
    }
}

/// Appends one TLV (type, 16-bit big-endian length, value) to `out`.
pub(crate) fn push_tlv(out: &mut Vec<u8>, kind: u8, value: &[u8]) -> Result<(), String> {
    let len = u16::try_from(value.len()).map_err(|_| {
        format!(
            "TLV 0x{kind:02x} value of {} bytes, over the {} a TLV can carry",
            value.len(),
            Tlv::MAX_VALUE_LEN
        )
    })?;
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Walks a run of TLVs that must fill `bytes` exactly, yielding each type
/// and value, or an error for a truncated one (and then stopping).
pub(crate) struct TlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> TlvIter<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        TlvIter { rest: bytes }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<(u8, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        if rest.len() < 3 {
            return Some(Err(format!(
                "{} byte(s) left after the last TLV, too few for a TLV's 3-byte type and length",
                rest.len()
            )));
        }
        let kind = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let Some(value) = rest.get(3..3 + len) else {
            return Some(Err(format!(
                "TLV 0x{kind:02x} declares {len} bytes but only {} remain",
                rest.len() - 3
            )));
        };
        self.rest = &rest[3 + len..];
        Some(Ok((kind, value)))
    }
}

/// Checks a TLV value against what the specification says of its type;
/// the CRC32C's checksum itself is checked against the whole header by
/// the parser.
pub(crate) fn validate(kind: u8, value: &[u8]) -> Result<(), String> {
    let not = |what: &str| format!("TLV 0x{kind:02x} \"{}\" is not {what}", value.escape_ascii());
    match kind {
        Tlv::CRC32C if value.len() != 4 => Err(format!("CRC32C TLV of {} bytes instead of 4", value.len())),
        Tlv::UNIQUE_ID if value.len() > Tlv::MAX_UNIQUE_ID_LEN => Err(format!(
            "UNIQUE_ID TLV of {} bytes, over the {} allowed",
            value.len(),
            Tlv::MAX_UNIQUE_ID_LEN
        )),
        Tlv::AUTHORITY if std::str::from_utf8(value).is_err() => Err(not("UTF-8")),
        Tlv::NETNS if !value.is_ascii() => Err(not("US-ASCII")),
        Tlv::SSL => SslInfo::parse(value).map(|_| ()),
        _ => Ok(()),
    }
}

/// The CRC32C (Castagnoli, RFC 4960 appendix B) of `header` with the four
/// bytes at `field` taken as zeros, as the CRC32C TLV is computed.
pub(crate) fn crc32c_with_zeroed(header: &[u8], field: usize) -> u32 {
    let crc = crc32c::crc32c(&header[..field]);
    let crc = crc32c::crc32c_append(crc, &[0; 4]);
    crc32c::crc32c_append(crc, &header[field + 4..])
}
