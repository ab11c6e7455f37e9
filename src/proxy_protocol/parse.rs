//! Bytes to a header: v1's text line and v2's binary block.
//!
//! The parser works on whatever prefix of the connection has arrived. It
//! tells a header that is still arriving ([`ParseError::Incomplete`]) from
//! one that can never become valid ([`ParseError::Invalid`]) as early as
//! the bytes allow, so a receiver stops waiting on garbage at once; every
//! prefix of a valid header is `Incomplete`.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::tlv::{self, Tlv, TlvIter};
use super::{Command, ProxyAddresses, ProxyHeader, Transport, UnixAddress, Version};

/// The v1 signature: `PROXY` and its space.
pub const V1_SIGNATURE: &[u8; 6] = b"PROXY ";
/// The v2 signature, the header's first 12 bytes.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included
/// (`PROXY UNKNOWN ffff:...:ffff ffff:...:ffff 65535 65535\r\n`).
pub const MAX_V1_LEN: usize = 107;
/// The longest v2 header: the 16 fixed bytes and a 16-bit length.
pub const MAX_V2_LEN: usize = V2_FIXED_LEN + u16::MAX as usize;

/// The shortest v1 line, `PROXY UNKNOWN\r\n`.
const MIN_V1_LEN: usize = 15;
/// Signature, version and command, family and transport, length.
const V2_FIXED_LEN: usize = 16;

/// Why bytes are not (yet) a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The bytes so far begin a valid header but do not complete it.
    Incomplete {
        /// At least this many bytes in total are needed; a v2 header's
        /// exact length once its first 16 bytes are there.
        needed: usize,
    },
    /// The bytes are not and cannot become a valid header; the reason
    /// names what is wrong.
    Invalid(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Incomplete { needed } => {
                write!(
                    f,
                    "incomplete PROXY protocol header: at least {needed} bytes needed"
                )
            }
            ParseError::Invalid(reason) => write!(f, "invalid PROXY protocol header: {reason}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Both kinds are `InvalidData`: where bytes are parsed whole (a datagram),
/// an incomplete header is as wrong as a garbled one.
impl From<ParseError> for io::Error {
    fn from(e: ParseError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e.to_string())
    }
}

fn invalid<T>(reason: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError::Invalid(reason.into()))
}

/// Parses the header at the start of `buf`: the header and how many bytes
/// it took (what follows is the client's data).
///
/// Never panics, whatever the bytes, and allocates only for what the
/// header holds (its TLVs).
///
/// ```
/// use socketserver::proxy_protocol::{ParseError, parse};
///
/// let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
/// let (header, len) = parse(line)?;
/// assert_eq!(header.source(), Some("192.168.0.1:56324".parse().unwrap()));
/// assert_eq!(&line[len..], b"GET / HTTP/1.1\r\n");
///
/// assert!(matches!(parse(&line[..20]), Err(ParseError::Incomplete { .. })));
/// assert!(matches!(parse(b"GET / HTTP/1.1\r\n"), Err(ParseError::Invalid(_))));
/// # Ok::<(), ParseError>(())
/// ```
pub fn parse(buf: &[u8]) -> Result<(ProxyHeader, usize), ParseError> {
    match buf.first() {
        None => Err(ParseError::Incomplete { needed: MIN_V1_LEN }),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf),
        Some(_) => invalid(format!(
            "begins with \"{}\", neither the v1 signature \"PROXY \" nor the v2 one",
            buf[..buf.len().min(8)].escape_ascii()
        )),
    }
}

/// Whether `prefix`, the first bytes of a connection, begins a PROXY
/// header: `Some(true)` for a full v1 (`PROXY `) or v2 signature,
/// `Some(false)` when it cannot, `None` when it is too short to tell
/// (it is a proper prefix of a signature, or empty).
///
/// A server uses it on connections from peers that may not send a header,
/// to refuse those that try.
///
/// ```
/// use socketserver::proxy_protocol::looks_like_proxy_header;
///
/// assert_eq!(looks_like_proxy_header(b"PROXY TCP4 "), Some(true));
/// assert_eq!(looks_like_proxy_header(b"\r\n\r\n\0\r\nQUIT\n!"), Some(true));
/// assert_eq!(looks_like_proxy_header(b"PRO"), None);
/// assert_eq!(looks_like_proxy_header(b"GET / HTTP/1.1"), Some(false));
/// ```
pub fn looks_like_proxy_header(prefix: &[u8]) -> Option<bool> {
    let mut undecided = false;
    for signature in [&V1_SIGNATURE[..], &V2_SIGNATURE[..]] {
        if prefix.starts_with(signature) {
            return Some(true);
        }
        undecided |= signature.starts_with(prefix);
    }
    if undecided { None } else { Some(false) }
}

/// Checks that `buf` agrees with `signature` as far as both go.
fn check_signature(buf: &[u8], signature: &[u8], name: &str) -> Result<(), ParseError> {
    let n = buf.len().min(signature.len());
    if buf[..n] != signature[..n] {
        return invalid(format!(
            "begins with \"{}\", not the {name} signature \"{}\"",
            buf[..n].escape_ascii(),
            signature.escape_ascii()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- v1

fn parse_v1(buf: &[u8]) -> Result<(ProxyHeader, usize), ParseError> {
    check_signature(buf, V1_SIGNATURE, "v1")?;
    let window = &buf[..buf.len().min(MAX_V1_LEN)];
    let end = match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) if window[i] == b'\n' => {
            return invalid(format!(
                "v1 line has a line feed without a carriage return at byte {i}"
            ));
        }
        Some(i) => i,
        None if buf.len() >= MAX_V1_LEN => {
            return invalid(format!("v1 line has no CRLF within its first {MAX_V1_LEN} bytes"));
        }
        None => {
            check_v1_prefix(buf)?;
            return incomplete_v1(buf.len() + 2);
        }
    };
    // The line ends at the CR at `end`; its LF is the next byte.
    if end + 2 > MAX_V1_LEN {
        return invalid(format!("v1 line has no CRLF within its first {MAX_V1_LEN} bytes"));
    }
    match buf.get(end + 1) {
        None => {
            check_v1_prefix(&buf[..end])?;
            incomplete_v1(end + 2)
        }
        Some(b'\n') => Ok((parse_v1_line(&buf[..end])?, end + 2)),
        Some(_) => invalid(format!(
            "v1 line has a carriage return without a line feed at byte {end}"
        )),
    }
}

fn incomplete_v1(needed: usize) -> Result<(ProxyHeader, usize), ParseError> {
    if needed > MAX_V1_LEN {
        return invalid(format!("v1 line has no CRLF within its first {MAX_V1_LEN} bytes"));
    }
    Err(ParseError::Incomplete {
        needed: needed.max(MIN_V1_LEN),
    })
}

/// Rejects a v1 line that has not ended yet as soon as what is there
/// cannot begin a valid one: an unknown protocol word, characters no
/// address or port has, too many fields.
fn check_v1_prefix(line: &[u8]) -> Result<(), ParseError> {
    let Some(rest) = line.get(V1_SIGNATURE.len()..) else {
        return Ok(());
    };
    let word_end = rest.iter().position(|&b| b == b' ');
    let word = &rest[..word_end.unwrap_or(rest.len())];
    let known = [&b"TCP4"[..], b"TCP6", b"UNKNOWN"];
    let fits = match word_end {
        None => known.iter().any(|k| k.starts_with(word)),
        Some(_) => known.contains(&word),
    };
    if !fits {
        return invalid(format!(
            "v1 protocol \"{}\" is not TCP4, TCP6 or UNKNOWN",
            word.escape_ascii()
        ));
    }
    if word == b"UNKNOWN" {
        return Ok(()); // anything may follow, up to the CRLF
    }
    // Every field but the last (which may still be arriving) is complete.
    let mut fields = rest.split(|&b| b == b' ').peekable();
    let mut count = 0;
    while let Some(field) = fields.next() {
        count += 1;
        if count == 1 {
            continue; // the protocol word
        }
        if field.is_empty() && fields.peek().is_some() {
            return invalid("v1 line has two spaces in a row");
        }
        if let Some(&b) = field
            .iter()
            .find(|&&b| !(b.is_ascii_hexdigit() || b == b'.' || b == b':'))
        {
            return invalid(format!(
                "v1 line has the character \"{}\" in \"{}\"",
                [b].escape_ascii(),
                field.escape_ascii()
            ));
        }
    }
    if count > 5 {
        return invalid("v1 line has more than the 5 fields of TCP4/TCP6");
    }
    Ok(())
}

/// A whole v1 line, from its signature to just before the CRLF.
fn parse_v1_line(line: &[u8]) -> Result<ProxyHeader, ParseError> {
    check_v1_prefix(line)?;
    let mut fields = line
        .get(V1_SIGNATURE.len()..)
        .unwrap_or_default()
        .split(|&b| b == b' ');
    let protocol = fields.next().unwrap_or_default();
    if protocol == b"UNKNOWN" {
        // "the receiver must ignore anything presented before the CRLF"
        return Ok(ProxyHeader::unknown(Version::V1));
    }
    let v4 = match protocol {
        b"TCP4" => true,
        b"TCP6" => false,
        _ => {
            return invalid(format!(
                "v1 protocol \"{}\" is not TCP4, TCP6 or UNKNOWN",
                protocol.escape_ascii()
            ));
        }
    };
    let fields: Vec<&[u8]> = fields.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return invalid(format!(
            "v1 {} line has {} fields after the protocol instead of 4",
            protocol.escape_ascii(),
            fields.len()
        ));
    };
    let src = parse_v1_ip(src, v4, "source")?;
    let dst = parse_v1_ip(dst, v4, "destination")?;
    let sport = parse_v1_port(sport, "source")?;
    let dport = parse_v1_port(dport, "destination")?;
    Ok(ProxyHeader::new_v1(
        SocketAddr::new(src, sport),
        SocketAddr::new(dst, dport),
    ))
}

fn parse_v1_ip(text: &[u8], v4: bool, which: &str) -> Result<IpAddr, ParseError> {
    let parsed = if v4 {
        parse_ipv4_strict(text).map(IpAddr::V4)
    } else {
        // As HAProxy's inet_pton: hex groups with one `::`, and a dotted
        // IPv4 tail is taken too.
        std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .map(IpAddr::V6)
    };
    parsed.ok_or_else(|| {
        ParseError::Invalid(format!(
            "v1 {which} address \"{}\" is not an {}",
            text.escape_ascii(),
            if v4 {
                "IPv4 address (four decimal numbers 0-255, no leading zeros)"
            } else {
                "IPv6 address"
            }
        ))
    })
}

/// Exactly four decimal numbers 0-255 joined by single dots, without
/// leading zeros (the specification forbids them as possibly octal).
fn parse_ipv4_strict(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for octet in &mut octets {
        *octet = u8::try_from(parse_decimal(parts.next()?, 3)?).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

fn parse_v1_port(text: &[u8], which: &str) -> Result<u16, ParseError> {
    parse_decimal(text, 5)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| {
            ParseError::Invalid(format!(
                "v1 {which} port \"{}\" is not a decimal number 0-65535 without leading zeros",
                text.escape_ascii()
            ))
        })
}

/// 1 to `max_digits` ASCII digits, no leading zero unless the number is 0.
fn parse_decimal(text: &[u8], max_digits: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max_digits || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if text.len() > 1 && text[0] == b'0' {
        return None;
    }
    Some(text.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

// ---------------------------------------------------------------- v2

fn parse_v2(buf: &[u8]) -> Result<(ProxyHeader, usize), ParseError> {
    check_signature(buf, V2_SIGNATURE, "v2")?;
    let need_fixed = ParseError::Incomplete { needed: V2_FIXED_LEN };
    let &ver_cmd = buf.get(12).ok_or(need_fixed.clone())?;
    if ver_cmd >> 4 != 2 {
        return invalid(format!(
            "v2 version {} (byte 0x{ver_cmd:02x}); only 2 is defined",
            ver_cmd >> 4
        ));
    }
    let command = match ver_cmd & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        other => {
            return invalid(format!(
                "v2 command {other}; only 0 (LOCAL) and 1 (PROXY) are defined"
            ));
        }
    };
    let &fam = buf.get(13).ok_or(need_fixed.clone())?;
    let layout = AddressLayout::of(fam)?;
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Err(need_fixed);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let address_len = layout.len();
    if len < address_len {
        return invalid(format!(
            "v2 length {len} is shorter than the {address_len}-byte address block of family/transport 0x{fam:02x}"
        ));
    }
    let total = V2_FIXED_LEN + len;
    let Some(header) = buf.get(..total) else {
        return Err(ParseError::Incomplete { needed: total });
    };
    let address_end = V2_FIXED_LEN + address_len;
    let addresses = layout.read(&header[V2_FIXED_LEN..address_end]);
    let tlvs = parse_v2_tlvs(header, address_end)?;
    Ok((
        ProxyHeader {
            version: Version::V2,
            command,
            addresses,
            tlvs,
        },
        total,
    ))
}

/// The TLVs from `start` to the end of `header`, which they must fill
/// exactly; each checked against its type's rules, and a CRC32C against
/// the header.
fn parse_v2_tlvs(header: &[u8], start: usize) -> Result<Vec<Tlv>, ParseError> {
    let mut tlvs = Vec::new();
    let mut offset = start;
    let mut crc_seen = false;
    for item in TlvIter::new(&header[start..]) {
        let (kind, value) = item.map_err(|e| ParseError::Invalid(format!("v2 {e}")))?;
        tlv::validate(kind, value).map_err(|e| ParseError::Invalid(format!("v2 {e}")))?;
        if kind == Tlv::CRC32C {
            if crc_seen {
                return invalid("v2 header has more than one CRC32C TLV");
            }
            crc_seen = true;
            let sent = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
            let computed = tlv::crc32c_with_zeroed(header, offset + 3);
            if sent != computed {
                return invalid(format!(
                    "v2 CRC32C mismatch: the header says 0x{sent:08x}, its bytes give 0x{computed:08x}"
                ));
            }
        }
        offset += 3 + value.len();
        tlvs.push(Tlv::new(kind, value));
    }
    Ok(tlvs)
}

/// What the family/transport byte says the address block holds.
#[derive(Clone, Copy)]
pub(crate) enum AddressLayout {
    Unspec,
    Inet4(Transport),
    Inet6(Transport),
    Unix(Transport),
}

impl AddressLayout {
    /// The layout of a family/transport byte. The family and the transport
    /// must be both unspecified or both specified: the specification gives
    /// no address layout for a mix such as 0x10, so no receiver could tell
    /// where its TLVs begin.
    fn of(fam: u8) -> Result<Self, ParseError> {
        let transport = match fam & 0x0f {
            0 => None,
            1 => Some(Transport::Stream),
            2 => Some(Transport::Datagram),
            other => {
                return invalid(format!(
                    "v2 transport protocol {other}; only 0 (UNSPEC), 1 (STREAM) and 2 (DGRAM) are defined"
                ));
            }
        };
        let family = fam >> 4;
        match (family, transport) {
            (0, None) => Ok(AddressLayout::Unspec),
            (1, Some(t)) => Ok(AddressLayout::Inet4(t)),
            (2, Some(t)) => Ok(AddressLayout::Inet6(t)),
            (3, Some(t)) => Ok(AddressLayout::Unix(t)),
            (4.., _) => invalid(format!(
                "v2 address family {family}; only 0 (AF_UNSPEC), 1 (AF_INET), 2 (AF_INET6) and 3 (AF_UNIX) are defined"
            )),
            _ => invalid(format!(
                "v2 family/transport byte 0x{fam:02x} mixes an unspecified and a specified half"
            )),
        }
    }

    /// The address block's length: 2 addresses, then 2 ports for IP.
    pub(crate) fn len(self) -> usize {
        match self {
            AddressLayout::Unspec => 0,
            AddressLayout::Inet4(_) => 2 * 4 + 2 * 2,
            AddressLayout::Inet6(_) => 2 * 16 + 2 * 2,
            AddressLayout::Unix(_) => 2 * UnixAddress::LEN,
        }
    }

    /// The addresses in `block`, which is exactly [`len`](Self::len) bytes.
    fn read(self, block: &[u8]) -> ProxyAddresses {
        let port = |at: usize| u16::from_be_bytes(array(block, at));
        let inet = |transport, source: IpAddr, destination: IpAddr, ports: usize| ProxyAddresses::Inet {
            transport,
            source: SocketAddr::new(source, port(ports)),
            destination: SocketAddr::new(destination, port(ports + 2)),
        };
        match self {
            AddressLayout::Unspec => ProxyAddresses::Unknown,
            AddressLayout::Inet4(t) => inet(t, array::<4>(block, 0).into(), array::<4>(block, 4).into(), 8),
            AddressLayout::Inet6(t) => {
                inet(t, array::<16>(block, 0).into(), array::<16>(block, 16).into(), 32)
            }
            AddressLayout::Unix(transport) => ProxyAddresses::Unix {
                transport,
                source: UnixAddress::from_raw(array(block, 0)),
                destination: UnixAddress::from_raw(array(block, UnixAddress::LEN)),
            },
        }
    }
}

/// The `N` bytes of `block` at `at`, which the caller knows are there.
fn array<const N: usize>(block: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&block[at..at + N]);
    out
}
