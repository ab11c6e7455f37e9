//! The PROXY protocol module against HAProxy's specification
//! (doc/proxy-protocol.txt): round trips of arbitrary headers, every
//! truncation, the invalid inputs the specification names, byte vectors
//! written by hand from its layout, trusted networks, and `read_header`
//! over real loopback sockets.
#![cfg(feature = "proxy-protocol")]

mod util;

use std::io::{ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use socketserver::proxy_protocol::{
    Command, IpNetwork, MAX_V1_LEN, ParseError, ProxyAddresses, ProxyHeader, SslInfo, Tlv, Transport,
    TrustedProxies, UnixAddress, V2_SIGNATURE, Version, looks_like_proxy_header, parse, read_header,
};
use util::{TIMEOUT, within};

// ------------------------------------------------------------ helpers

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn invalid_reason(bytes: &[u8]) -> String {
    match parse(bytes) {
        Err(ParseError::Invalid(reason)) => reason,
        other => panic!(
            "{:?} parsed as {other:?}, not Invalid",
            bytes.escape_ascii().to_string()
        ),
    }
}

/// Asserts `bytes` are refused and the reason mentions `words`.
fn assert_invalid(bytes: &[u8], words: &str) {
    let reason = invalid_reason(bytes);
    assert!(
        reason.contains(words),
        "reason for {:?} is {reason:?}, which does not mention {words:?}",
        bytes.escape_ascii().to_string()
    );
}

/// A v2 header from its parts, with the length field filled in.
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

const TCP4_BLOCK: [u8; 12] = [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];

/// CRC32C written bit by bit from RFC 4960 appendix B (reflected
/// polynomial 0x82F63B78), independent of the crate's.
fn reference_crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The header with every CRC32C value zeroed, to compare a header with the
/// one parsed back (whose CRC the encoder computed).
fn without_crc_values(mut header: ProxyHeader) -> ProxyHeader {
    for tlv in &mut header.tlvs {
        if tlv.kind == Tlv::CRC32C {
            tlv.value = vec![0; 4];
        }
    }
    header
}

/// The addresses of the specification's examples: TCP from
/// 192.168.0.1:56324 to 192.168.0.11:443.
fn assert_example_addresses(header: &ProxyHeader) {
    assert_eq!(
        header.addresses,
        ProxyAddresses::Inet {
            transport: Transport::Stream,
            source: addr("192.168.0.1:56324"),
            destination: addr("192.168.0.11:443"),
        }
    );
    assert_eq!(header.source(), Some(addr("192.168.0.1:56324")));
    assert_eq!(header.destination(), Some(addr("192.168.0.11:443")));
}

// ------------------------------------------------------------ strategies

fn ip_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
        // IPv4-mapped IPv6, which v1 must write without a dotted tail.
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| {
            let map = |v4: [u8; 4]| IpAddr::V6(std::net::Ipv4Addr::from(v4).to_ipv6_mapped());
            (map(a), map(b))
        }),
    ]
}

fn socket_pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    (ip_pair(), any::<u16>(), any::<u16>())
        .prop_map(|((s, d), sp, dp)| (SocketAddr::new(s, sp), SocketAddr::new(d, dp)))
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![Just(Transport::Stream), Just(Transport::Datagram)]
}

fn unix_address() -> impl Strategy<Value = UnixAddress> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=UnixAddress::LEN).prop_map(|p| UnixAddress::new(p).unwrap()),
        // Any 108 bytes: abstract names, garbage after the NUL.
        prop::collection::vec(any::<u8>(), UnixAddress::LEN)
            .prop_map(|raw| UnixAddress::from_raw(raw.try_into().unwrap())),
    ]
}

fn v2_addresses() -> impl Strategy<Value = ProxyAddresses> {
    prop_oneof![
        Just(ProxyAddresses::Unknown),
        (transport(), socket_pair()).prop_map(|(transport, (source, destination))| ProxyAddresses::Inet {
            transport,
            source,
            destination
        }),
        (transport(), unix_address(), unix_address()).prop_map(|(transport, source, destination)| {
            ProxyAddresses::Unix {
                transport,
                source,
                destination,
            }
        }),
    ]
}

fn ssl_value() -> impl Strategy<Value = Vec<u8>> {
    let ascii = || prop::option::of("[ -~]{0,24}");
    (
        any::<u8>(),
        any::<u32>(),
        (ascii(), prop::option::of(".{0,16}"), ascii(), ascii()),
        (ascii(), ascii(), ascii()),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(
            |(client, verify, (version, cn, cipher, sig_alg), (key_alg, group, scheme), cert)| {
                SslInfo {
                    client,
                    verify,
                    version: version.as_deref(),
                    common_name: cn.as_deref(),
                    cipher: cipher.as_deref(),
                    sig_alg: sig_alg.as_deref(),
                    key_alg: key_alg.as_deref(),
                    group: group.as_deref(),
                    sig_scheme: scheme.as_deref(),
                    client_cert: cert.as_deref(),
                }
                .to_tlv_value()
                .unwrap()
            },
        )
}

/// TLVs of every registered type with values their rules allow, and
/// unregistered types with any value.
fn tlv() -> impl Strategy<Value = Tlv> {
    let bytes = |max| prop::collection::vec(any::<u8>(), 0..=max);
    let constrained = [Tlv::AUTHORITY, Tlv::CRC32C, Tlv::UNIQUE_ID, Tlv::SSL, Tlv::NETNS];
    prop_oneof![
        (
            any::<u8>().prop_filter("a type with rules", move |k| !constrained.contains(k)),
            bytes(80)
        )
            .prop_map(|(kind, value)| Tlv::new(kind, value)),
        bytes(40).prop_map(|v| Tlv::new(Tlv::ALPN, v)),
        ".{0,40}".prop_map(|s| Tlv::new(Tlv::AUTHORITY, s)),
        bytes(Tlv::MAX_UNIQUE_ID_LEN).prop_map(|v| Tlv::new(Tlv::UNIQUE_ID, v)),
        "[ -~]{0,20}".prop_map(|s| Tlv::new(Tlv::NETNS, s)),
        bytes(8).prop_map(|v| Tlv::new(Tlv::NOOP, v)),
        ssl_value().prop_map(|v| Tlv::new(Tlv::SSL, v)),
    ]
}

fn v2_header() -> impl Strategy<Value = ProxyHeader> {
    (
        prop_oneof![Just(Command::Local), Just(Command::Proxy)],
        v2_addresses(),
        prop::collection::vec(tlv(), 0..6),
        prop::option::of((any::<usize>(), any::<[u8; 4]>())),
    )
        .prop_map(|(command, addresses, mut tlvs, crc)| {
            if let Some((at, value)) = crc {
                tlvs.insert(at % (tlvs.len() + 1), Tlv::new(Tlv::CRC32C, value));
            }
            ProxyHeader {
                version: Version::V2,
                command,
                addresses,
                tlvs,
            }
        })
}

fn v1_header() -> impl Strategy<Value = ProxyHeader> {
    prop_oneof![
        Just(ProxyHeader::unknown(Version::V1)),
        socket_pair().prop_map(|(s, d)| ProxyHeader::new_v1(s, d)),
    ]
}

fn any_header() -> impl Strategy<Value = ProxyHeader> {
    prop_oneof![v1_header(), v2_header()]
}

// ------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn headers_survive_encode_and_parse(header in any_header(), payload in prop::collection::vec(any::<u8>(), 0..32)) {
        let bytes = header.to_bytes().unwrap();
        if header.version == Version::V1 {
            prop_assert!(bytes.len() <= MAX_V1_LEN);
        }
        let mut wire = bytes.clone();
        wire.extend_from_slice(&payload);
        let (parsed, len) = parse(&wire).unwrap();
        prop_assert_eq!(len, bytes.len());
        prop_assert_eq!(without_crc_values(parsed.clone()), without_crc_values(header));
        // A parsed header re-encodes to exactly the bytes it came from.
        prop_assert_eq!(parsed.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn every_truncation_is_incomplete(header in any_header()) {
        let bytes = header.to_bytes().unwrap();
        for cut in 0..bytes.len() {
            match parse(&bytes[..cut]) {
                Err(ParseError::Incomplete { needed }) => {
                    prop_assert!(needed > cut && needed <= bytes.len(), "cut {} needed {} of {}", cut, needed, bytes.len());
                }
                other => prop_assert!(false, "cut at {} of {:?}: {:?}", cut, bytes.escape_ascii().to_string(), other),
            }
        }
    }

    /// Damaged headers and random bytes: never a panic, and whatever
    /// parses re-encodes to the same bytes and the same header.
    #[test]
    fn damaged_headers_never_panic(
        header in any_header(),
        damage in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = header.to_bytes().unwrap();
        for (at, byte) in damage {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        for input in [&bytes[..], &noise[..]] {
            if let Ok((parsed, len)) = parse(input) {
                let again = parsed.to_bytes().unwrap();
                let (reparsed, relen) = parse(&again).unwrap();
                prop_assert_eq!(&reparsed, &parsed);
                prop_assert_eq!(relen, again.len());
                if parsed.version == Version::V2 {
                    prop_assert_eq!(&again[..], &input[..len]);
                }
            }
        }
    }

    #[test]
    fn v1_rejects_out_of_range_ports(port in 65_536u32..1_000_000) {
        let line = format!("PROXY TCP4 1.2.3.4 5.6.7.8 {port} 80\r\n");
        assert_invalid(line.as_bytes(), "source port");
    }
}

// ------------------------------------------------------------ v1

#[test]
fn v1_example_from_the_specification() {
    let wire =
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n";
    let (header, len) = parse(wire).unwrap();
    assert_eq!(len, 47);
    assert_eq!(header.version, Version::V1);
    assert_eq!(header.command, Command::Proxy);
    assert_example_addresses(&header);
    assert!(header.tlvs.is_empty());
    assert!(wire[len..].starts_with(b"GET /"));
}

#[test]
fn v1_longest_lines_of_the_specification() {
    let tcp4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(tcp4.len(), 56);
    assert_eq!(parse(tcp4).unwrap().1, 56);

    let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let tcp6 = format!("PROXY TCP6 {v6} {v6} 65535 65535\r\n");
    assert_eq!(tcp6.len(), 104);
    let (header, len) = parse(tcp6.as_bytes()).unwrap();
    assert_eq!(len, 104);
    assert_eq!(header.source(), Some(SocketAddr::new(ip(v6), 65535)));

    let worst = format!("PROXY UNKNOWN {v6} {v6} 65535 65535\r\n");
    assert_eq!(worst.len(), MAX_V1_LEN);
    let (header, len) = parse(worst.as_bytes()).unwrap();
    assert_eq!((header, len), (ProxyHeader::unknown(Version::V1), MAX_V1_LEN));
}

#[test]
fn v1_unknown_ignores_the_rest_of_the_line() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN 1.2.3.4 whatever\r\nxyz",
    ] {
        let (header, len) = parse(line).unwrap();
        assert_eq!(header, ProxyHeader::unknown(Version::V1));
        assert_eq!(header.command, Command::Proxy);
        assert_eq!(
            header.source(),
            None,
            "UNKNOWN: use the real connection's address"
        );
        assert_eq!(&line[len - 2..len], b"\r\n");
    }
    assert_eq!(
        ProxyHeader::unknown(Version::V1).to_v1().unwrap(),
        b"PROXY UNKNOWN\r\n"
    );
}

#[test]
fn v1_over_107_bytes_or_without_crlf_is_invalid() {
    let v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    // 108 bytes: one too many.
    let long = format!("PROXY UNKNOWN {v6} {v6} 65535 655350\r\n");
    assert_eq!(long.len(), MAX_V1_LEN + 1);
    assert_invalid(long.as_bytes(), "no CRLF within its first 107 bytes");
    // 107 bytes without a CRLF: no more bytes can help.
    let unended = "PROXY UNKNOWN ".to_string() + &"x".repeat(93);
    assert_eq!(unended.len(), MAX_V1_LEN);
    assert_invalid(unended.as_bytes(), "no CRLF");
    // 106 bytes without one: the CRLF would end past byte 107.
    assert_invalid(&unended.as_bytes()[..106], "no CRLF");
    // 105: it still fits.
    assert_eq!(
        parse(&unended.as_bytes()[..105]),
        Err(ParseError::Incomplete { needed: MAX_V1_LEN })
    );
}

#[test]
fn v1_line_endings_must_be_crlf() {
    assert_invalid(b"PROXY UNKNOWN\n", "line feed without a carriage return");
    assert_invalid(b"PROXY UNKNOWN\rX", "carriage return without a line feed");
    assert_invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n", "line feed without");
}

#[test]
fn v1_bad_addresses_and_ports_are_invalid() {
    let cases: &[(&str, &str)] = &[
        (
            "PROXY TCP4 192.168.01.1 1.2.3.4 1 2\r\n",
            "source address \"192.168.01.1\"",
        ),
        (
            "PROXY TCP4 1.2.3.4 256.0.0.1 1 2\r\n",
            "destination address \"256.0.0.1\"",
        ),
        ("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", "source address"),
        ("PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n", "source address"),
        ("PROXY TCP4 ::1 1.2.3.4 1 2\r\n", "source address \"::1\""),
        ("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "source address \"1.2.3.4\""),
        ("PROXY TCP6 ::1 :::1 1 2\r\n", "destination address"),
        ("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "source port \"65536\""),
        ("PROXY TCP4 1.2.3.4 1.2.3.4 1 080\r\n", "destination port \"080\""),
        ("PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n", "character \"-\""),
        ("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "3 fields"),
        ("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "more than the 5 fields"),
        ("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "two spaces"),
        ("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", "more than the 5 fields"),
        ("PROXY TCP4\r\n", "0 fields"),
        ("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "protocol \"TCP5\""),
        ("PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n", "protocol \"tcp4\""),
        ("PROXY UNKNOWNX\r\n", "protocol \"UNKNOWNX\""),
        ("PROXY UNKNOW\r\n", "protocol \"UNKNOW\""),
        ("PROXY\r\n", "signature"),
        ("PROXY  UNKNOWN\r\n", "protocol \"\""),
    ];
    for (line, words) in cases {
        assert_invalid(line.as_bytes(), words);
    }
}

#[test]
fn v1_garbage_is_refused_before_the_line_ends() {
    // No CRLF yet, but no valid header can begin this way.
    assert_invalid(b"PROXY HTTP/1.1", "protocol \"HTTP/1.1\"");
    assert_invalid(b"PROXY TCP4 1.2.3.4 x", "character \"x\"");
    assert_invalid(b"GET / HTTP/1.1\r\n", "neither");
    assert_invalid(b"PROXX", "not the v1 signature");
}

#[test]
fn v1_refuses_what_it_cannot_say() {
    let (s4, d4, d6) = (addr("1.2.3.4:1"), addr("5.6.7.8:2"), addr("[::1]:2"));
    let refused = [
        ProxyHeader::local(),
        ProxyHeader::new_v1(s4, d6),
        ProxyHeader::new_v1(s4, d4).with_unique_id(b"x"),
        ProxyHeader {
            addresses: ProxyAddresses::Inet {
                transport: Transport::Datagram,
                source: s4,
                destination: d4,
            },
            ..ProxyHeader::new_v1(s4, d4)
        },
        ProxyHeader {
            addresses: ProxyAddresses::Unix {
                transport: Transport::Stream,
                source: UnixAddress::new("/a").unwrap(),
                destination: UnixAddress::new("/b").unwrap(),
            },
            ..ProxyHeader::new_v1(s4, d4)
        },
    ];
    for header in refused {
        let error = header.to_v1().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{header:?}");
    }
}

#[test]
fn v1_writes_ipv4_mapped_addresses_in_hex() {
    let mapped = SocketAddr::new(ip("::ffff:1.2.3.4"), 80);
    let line = ProxyHeader::new_v1(mapped, mapped).to_v1().unwrap();
    assert_eq!(line, b"PROXY TCP6 ::ffff:102:304 ::ffff:102:304 80 80\r\n");
}

// ------------------------------------------------------------ v2

/// A v2 header written byte by byte from the specification's layout
/// (section 2.2), with every registered TLV type; every field is checked.
#[test]
fn v2_by_hand_from_the_specification() {
    let mut wire: Vec<u8> = Vec::new();
    wire.extend_from_slice(b"\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"); // signature
    wire.push(0x21); // version 2, PROXY
    wire.push(0x11); // AF_INET, STREAM
    wire.extend_from_slice(&[0, 138]); // length: 12 + 5 + 14 + 7 + 80 + 7 + 6 + 7
    wire.extend_from_slice(&[192, 168, 0, 1]); // source address
    wire.extend_from_slice(&[192, 168, 0, 11]); // destination address
    wire.extend_from_slice(&[0xdc, 0x04]); // source port 56324
    wire.extend_from_slice(&[0x01, 0xbb]); // destination port 443
    wire.extend_from_slice(b"\x01\x00\x02h2"); // ALPN
    wire.extend_from_slice(b"\x02\x00\x0bexample.com"); // AUTHORITY
    wire.extend_from_slice(b"\x05\x00\x04id-1"); // UNIQUE_ID
    wire.extend_from_slice(b"\x20\x00\x4d"); // SSL, 77 bytes:
    wire.extend_from_slice(b"\x07"); //   client: SSL | CERT_CONN | CERT_SESS
    wire.extend_from_slice(b"\x00\x00\x00\x00"); //   verify: 0, verified
    wire.extend_from_slice(b"\x21\x00\x07TLSv1.3"); //   VERSION
    wire.extend_from_slice(b"\x22\x00\x0bclient.test"); //   CN
    wire.extend_from_slice(b"\x23\x00\x16TLS_AES_128_GCM_SHA256"); //   CIPHER
    wire.extend_from_slice(b"\x24\x00\x0aRSA-SHA256"); //   SIG_ALG
    wire.extend_from_slice(b"\x25\x00\x07RSA2048"); //   KEY_ALG
    wire.extend_from_slice(b"\x30\x00\x04blue"); // NETNS
    wire.extend_from_slice(b"\x04\x00\x03\x00\x00\x00"); // NOOP
    wire.extend_from_slice(b"\x03\x00\x04\x00\x00\x00\x00"); // CRC32C, zeroed
    assert_eq!(wire.len(), 16 + 138);
    let crc = reference_crc32c(&wire);
    let at = wire.len() - 4;
    wire[at..].copy_from_slice(&crc.to_be_bytes());
    wire.extend_from_slice(b"payload");

    let (header, len) = parse(&wire).unwrap();
    assert_eq!(len, 16 + 138);
    assert_eq!(header.version, Version::V2);
    assert_eq!(header.command, Command::Proxy);
    assert_example_addresses(&header);
    assert_eq!(header.alpn(), Some(&b"h2"[..]));
    assert_eq!(header.authority(), Some("example.com"));
    assert_eq!(header.unique_id(), Some(&b"id-1"[..]));
    assert_eq!(header.netns(), Some("blue"));
    assert_eq!(header.tlv(Tlv::NOOP), Some(&[0u8, 0, 0][..]));
    assert_eq!(header.tlv(Tlv::CRC32C), Some(&crc.to_be_bytes()[..]));
    assert_eq!(header.tlv(0xE0), None);
    let kinds: Vec<u8> = header.tlvs.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [0x01, 0x02, 0x05, 0x20, 0x30, 0x04, 0x03]);
    let ssl = header.ssl().unwrap();
    assert_eq!(
        ssl,
        SslInfo {
            client: 0x07,
            verify: 0,
            version: Some("TLSv1.3"),
            common_name: Some("client.test"),
            cipher: Some("TLS_AES_128_GCM_SHA256"),
            sig_alg: Some("RSA-SHA256"),
            key_alg: Some("RSA2048"),
            group: None,
            sig_scheme: None,
            client_cert: None,
        }
    );
    assert!(ssl.is_tls() && ssl.cert_on_connection() && ssl.cert_in_session() && ssl.cert_verified());
    // Re-encoding gives the same bytes, checksum included.
    assert_eq!(header.to_v2().unwrap(), &wire[..len]);
}

/// Headers a real HAProxy (2.6.12, Debian 12's package) sent to a capturing
/// server on loopback, each followed by the client's "hello":
/// `server s2 127.0.0.1:47201 send-proxy-v2 proxy-v2-options crc32c,unique-id`
/// with `unique-id-format abc-%ci-%cp`; `send-proxy` from an IPv4 and an
/// IPv6 frontend; and a health check with `check-send-proxy`.
#[test]
fn headers_captured_from_haproxy() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let v2 = hex(concat!(
        "0d0a0d0a000d0a515549540a",                     // signature
        "2111",                                         // v2 PROXY, TCP over IPv4
        "0029",                                         // 41 bytes follow
        "7f0000017f000001a70ab7fd",                     // 127.0.0.1:42762 -> 127.0.0.1:47101
        "03000400b6a00a",                               // CRC32C
        "0500136162632d3132372e302e302e312d3432373632", // UNIQUE_ID
        "68656c6c6f",                                   // hello
    ));
    let (header, len) = parse(&v2).unwrap();
    assert_eq!(&v2[len..], b"hello");
    assert_eq!(header.command, Command::Proxy);
    assert_eq!(header.source(), Some(addr("127.0.0.1:42762")));
    assert_eq!(header.destination(), Some(addr("127.0.0.1:47101")));
    assert_eq!(header.unique_id(), Some(&b"abc-127.0.0.1-42762"[..]));
    assert_eq!(header.tlv(Tlv::CRC32C), Some(&[0x00, 0xb6, 0xa0, 0x0a][..]));
    assert_eq!(header.to_v2().unwrap(), &v2[..len]);
    let mut zeroed = v2[..len].to_vec();
    zeroed[31..35].fill(0);
    assert_eq!(reference_crc32c(&zeroed), 0x00b6_a00a);

    let v1 = b"PROXY TCP4 127.0.0.1 127.0.0.1 48622 47102\r\nhello";
    let (header, len) = parse(v1).unwrap();
    assert_eq!(
        (header.source(), &v1[len..]),
        (Some(addr("127.0.0.1:48622")), &b"hello"[..])
    );
    assert_eq!(header.to_v1().unwrap(), &v1[..len]);

    let v1_6 = b"PROXY TCP6 ::1 ::1 37042 47103\r\nhello";
    let (header, len) = parse(v1_6).unwrap();
    assert_eq!(header.source(), Some(addr("[::1]:37042")));
    assert_eq!(header.destination(), Some(addr("[::1]:47103")));
    assert_eq!(header.to_v1().unwrap(), &v1_6[..len]);

    let check = hex("0d0a0d0a000d0a515549540a20000000");
    assert_eq!(parse(&check).unwrap(), (ProxyHeader::local(), 16));
    assert_eq!(ProxyHeader::local().to_v2().unwrap(), check);
}

#[test]
fn crc32c_reference_matches_the_standard_check_value() {
    assert_eq!(reference_crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn v2_addresses_of_every_family() {
    // TCP over IPv6.
    let mut block = Vec::new();
    for text in ["2001:db8::1", "2001:db8::2"] {
        block.extend_from_slice(&text.parse::<std::net::Ipv6Addr>().unwrap().octets());
    }
    block.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
    let (header, _) = parse(&v2(0x21, 0x21, &block)).unwrap();
    assert_eq!(header.source(), Some(addr("[2001:db8::1]:4660")));
    assert_eq!(header.destination(), Some(addr("[2001:db8::2]:80")));

    // UDP over IPv4.
    let (header, _) = parse(&v2(0x21, 0x12, &TCP4_BLOCK)).unwrap();
    assert!(matches!(
        header.addresses,
        ProxyAddresses::Inet {
            transport: Transport::Datagram,
            ..
        }
    ));
    assert_eq!(header.source(), Some(addr("192.168.0.1:56324")));

    // Unix stream: 108 bytes each, the path cut at the first NUL.
    let mut block = vec![0u8; 216];
    block[..9].copy_from_slice(b"/run/a.sk");
    block[108] = 0; // an abstract address: NUL, then its name
    block[109..113].copy_from_slice(b"name");
    let (header, len) = parse(&v2(0x21, 0x31, &block)).unwrap();
    assert_eq!(len, 16 + 216);
    let ProxyAddresses::Unix {
        transport,
        source,
        destination,
    } = &header.addresses
    else {
        panic!("{header:?}");
    };
    assert_eq!(*transport, Transport::Stream);
    assert_eq!(source.path_bytes(), b"/run/a.sk");
    assert_eq!(destination.path_bytes(), b"");
    assert_eq!(&destination.as_raw()[..5], b"\0name");
    assert_eq!(header.source(), None, "no IP address to report");
}

#[test]
fn v2_local_means_use_the_real_connection() {
    let (header, len) = parse(&v2(0x20, 0x00, &[])).unwrap();
    assert_eq!(len, 16);
    assert_eq!(header, ProxyHeader::local());
    assert_eq!(header.source(), None);
    // LOCAL with addresses: they are skipped as the length says, kept for
    // logging, and not reported as the client's.
    let (header, len) = parse(&v2(0x20, 0x11, &TCP4_BLOCK)).unwrap();
    assert_eq!(len, 28);
    assert_eq!(header.command, Command::Local);
    assert!(matches!(header.addresses, ProxyAddresses::Inet { .. }));
    assert_eq!(header.source(), None);
    assert_eq!(header.destination(), None);
    // LOCAL with TLVs after an empty address block.
    let (header, _) = parse(&v2(0x20, 0x00, b"\x05\x00\x02ab")).unwrap();
    assert_eq!(header.unique_id(), Some(&b"ab"[..]));
    assert_eq!(ProxyHeader::local().to_v2().unwrap(), v2(0x20, 0x00, &[]));
}

#[test]
fn v2_proxy_with_unspecified_addresses() {
    let (header, _) = parse(&v2(0x21, 0x00, &[])).unwrap();
    assert_eq!(header, ProxyHeader::unknown(Version::V2));
    assert_eq!(header.source(), None);
}

#[test]
fn v2_wrong_signature_version_command_family_are_invalid() {
    let good = v2(0x21, 0x11, &TCP4_BLOCK);
    for i in 0..12 {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        let reason = invalid_reason(&bad);
        assert!(
            reason.contains("signature") || reason.contains("neither"),
            "byte {i}: {reason}"
        );
    }
    for ver_cmd in [0x11, 0x31, 0xF1, 0x01] {
        assert_invalid(&v2(ver_cmd, 0x11, &TCP4_BLOCK), "version");
    }
    for ver_cmd in [0x22, 0x2F] {
        assert_invalid(&v2(ver_cmd, 0x11, &TCP4_BLOCK), "command");
    }
    for fam in [0x41, 0xF1] {
        assert_invalid(&v2(0x21, fam, &TCP4_BLOCK), "address family");
    }
    for fam in [0x13, 0x1F] {
        assert_invalid(&v2(0x21, fam, &TCP4_BLOCK), "transport protocol");
    }
    for fam in [0x01, 0x02, 0x10, 0x20, 0x30] {
        assert_invalid(&v2(0x21, fam, &TCP4_BLOCK), "mixes");
    }
    // Refused from the 13th byte on, before the rest arrives.
    assert_invalid(&[&V2_SIGNATURE[..], &[0x11]].concat(), "version");
}

#[test]
fn v2_length_shorter_than_the_address_block_is_invalid() {
    assert_invalid(
        &v2(0x21, 0x11, &TCP4_BLOCK[..11]),
        "shorter than the 12-byte address block",
    );
    assert_invalid(
        &v2(0x21, 0x21, &[0; 35]),
        "shorter than the 36-byte address block",
    );
    assert_invalid(
        &v2(0x21, 0x31, &[0; 215]),
        "shorter than the 216-byte address block",
    );
    // Known from the 16 fixed bytes alone.
    assert_invalid(&v2(0x21, 0x31, &[0; 215])[..16], "216-byte");
}

#[test]
fn v2_bytes_after_the_addresses_must_be_whole_tlvs() {
    let with = |tail: &[u8]| v2(0x21, 0x11, &[&TCP4_BLOCK[..], tail].concat());
    assert_invalid(&with(b"\x01"), "1 byte(s) left after the last TLV");
    assert_invalid(&with(b"\x01\x00"), "2 byte(s) left");
    assert_invalid(&with(b"\x01\x00\x05abc"), "declares 5 bytes but only 3 remain");
    assert_invalid(
        &with(b"\x01\x00\x01a\x01\x00\x02a"),
        "declares 2 bytes but only 1 remain",
    );
    // The length says where the header ends; a TLV may not run past it.
    let mut wire = with(b"\x01\x00\x03abc");
    wire[15] -= 1;
    assert_invalid(&wire, "declares 3 bytes but only 2 remain");
}

#[test]
fn v2_crc32c_is_verified() {
    let header = ProxyHeader::new_v2(addr("10.0.0.1:1000"), addr("10.0.0.2:2000"))
        .with_tlv(Tlv::CRC32C, [0; 4])
        .with_unique_id(b"abc");
    let wire = header.to_v2().unwrap();
    let (parsed, _) = parse(&wire).unwrap();
    let field = 16 + 12 + 3;
    let mut zeroed = wire.clone();
    zeroed[field..field + 4].fill(0);
    assert_eq!(
        parsed.tlv(Tlv::CRC32C),
        Some(&reference_crc32c(&zeroed).to_be_bytes()[..])
    );

    // Any changed bit of the addresses or of another TLV is caught.
    let protected = (16..field - 3).chain(field + 4..wire.len());
    for i in protected {
        for bit in 0..8 {
            let mut bad = wire.clone();
            bad[i] ^= 1 << bit;
            match parse(&bad) {
                Err(ParseError::Invalid(reason)) => assert!(
                    reason.contains("CRC32C mismatch") || reason.contains("TLV"),
                    "byte {i} bit {bit}: {reason}"
                ),
                other => panic!("byte {i} bit {bit}: {other:?}"),
            }
        }
    }
    let mut bad = wire.clone();
    bad[field] ^= 1;
    assert_invalid(&bad, "CRC32C mismatch");
}

#[test]
fn v2_tlv_rules_of_the_specification() {
    let with = |tlvs: &[u8]| v2(0x21, 0x11, &[&TCP4_BLOCK[..], tlvs].concat());
    assert_invalid(&with(b"\x03\x00\x03abc"), "CRC32C TLV of 3 bytes");
    let two_crcs = ProxyHeader::unknown(Version::V2)
        .with_tlv(Tlv::CRC32C, [0; 4])
        .with_tlv(Tlv::CRC32C, [0; 4]);
    assert_eq!(two_crcs.to_v2().unwrap_err().kind(), ErrorKind::InvalidInput);
    let mut id = b"\x05\x00\x81".to_vec();
    id.extend_from_slice(&[b'x'; 129]);
    assert_invalid(&with(&id), "UNIQUE_ID TLV of 129 bytes");
    id[2] = 0x80;
    id.pop();
    assert_eq!(parse(&with(&id)).unwrap().0.unique_id().unwrap().len(), 128);
    assert_invalid(&with(b"\x02\x00\x02\xff\xfe"), "not UTF-8");
    assert_invalid(&with(b"\x30\x00\x02\xc3\xa9"), "not US-ASCII");
    assert_invalid(&with(b"\x20\x00\x04\x01\x00\x00\x00"), "SSL TLV of 4 bytes");
    assert_invalid(
        &with(b"\x20\x00\x07\x01\x00\x00\x00\x00\x21\x00"),
        "SSL TLV: 2 byte(s) left",
    );
    assert_invalid(
        &with(b"\x20\x00\x09\x01\x00\x00\x00\x00\x21\x00\x01\xff"),
        "not US-ASCII",
    );
    // Unknown and custom types are kept as they are.
    let (header, _) = parse(&with(b"\xe0\x00\x03abc\xff\x00\x00")).unwrap();
    assert_eq!(header.tlv(0xE0), Some(&b"abc"[..]));
    assert_eq!(header.tlv(0xFF), Some(&b""[..]));
}

#[test]
fn v2_encoder_refuses_what_the_parser_would() {
    let base = ProxyHeader::new_v2(addr("1.2.3.4:1"), addr("[::1]:2"));
    assert_eq!(base.to_v2().unwrap_err().kind(), ErrorKind::InvalidInput);
    let ok = ProxyHeader::new_v2(addr("1.2.3.4:1"), addr("5.6.7.8:2"));
    for bad in [
        ok.clone().with_tlv(Tlv::UNIQUE_ID, vec![0; 129]),
        ok.clone().with_tlv(Tlv::SSL, vec![0; 3]),
        ok.clone().with_tlv(0xE0, vec![0; 65_536]),
        ok.clone()
            .with_tlv(0xE0, vec![0; 40_000])
            .with_tlv(0xE1, vec![0; 40_000]),
    ] {
        let error = bad.to_v2().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    }
    // The largest header that fits: 65,535 bytes after the fixed 16.
    let largest = ok.with_tlv(0xE0, vec![7; 65_535 - 12 - 3]);
    let wire = largest.to_v2().unwrap();
    assert_eq!(wire.len(), 16 + 65_535);
    assert_eq!(parse(&wire).unwrap(), (largest, wire.len()));
}

#[test]
fn ssl_info_encodes_every_field() {
    let cert = [0x30, 0x82, 0x01, 0x0a];
    let info = SslInfo {
        client: SslInfo::CLIENT_SSL,
        verify: 1,
        version: Some("TLSv1.2"),
        common_name: Some("zoë"),
        cipher: Some("ECDHE-RSA-AES128-GCM-SHA256"),
        sig_alg: Some("RSA-SHA256"),
        key_alg: Some("RSA2048"),
        group: Some("secp256r1"),
        sig_scheme: Some("rsa_pss_rsae_sha256"),
        client_cert: Some(&cert),
    };
    let header = ProxyHeader::local().with_tlv(Tlv::SSL, info.to_tlv_value().unwrap());
    let (parsed, _) = parse(&header.to_v2().unwrap()).unwrap();
    let got = parsed.ssl().unwrap();
    assert_eq!(got, info);
    assert!(got.is_tls() && !got.cert_on_connection() && !got.cert_verified());
    let not_ascii = SslInfo {
        cipher: Some("é"),
        ..SslInfo::default()
    };
    assert_eq!(
        not_ascii.to_tlv_value().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn parse_errors_become_invalid_data() {
    let error: std::io::Error = parse(b"nonsense").unwrap_err().into();
    assert_eq!(error.kind(), ErrorKind::InvalidData);
    assert!(
        error.to_string().contains("invalid PROXY protocol header"),
        "{error}"
    );
}

// ------------------------------------------------------------ signatures

#[test]
fn looks_like_proxy_header_decides_only_when_it_can() {
    for sig in [&b"PROXY "[..], &V2_SIGNATURE[..]] {
        for n in 0..sig.len() {
            assert_eq!(looks_like_proxy_header(&sig[..n]), None, "{:?}", &sig[..n]);
        }
        assert_eq!(looks_like_proxy_header(sig), Some(true));
        assert_eq!(looks_like_proxy_header(&[sig, b"more"].concat()), Some(true));
    }
    for other in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"\x16\x03\x01",
        b"PROXYX",
        b"\r\n\r\nX",
        b"hello",
    ] {
        assert_eq!(looks_like_proxy_header(other), Some(false), "{other:?}");
    }
}

// ------------------------------------------------------------ trusted proxies

#[test]
fn trusted_proxies_match_networks_and_mapped_addresses() {
    let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8 ::1 fd00::/8 ::ffff:192.168.0.0/112"
        .parse()
        .unwrap();
    for yes in [
        "127.0.0.1",
        "::ffff:127.0.0.1",
        "10.0.0.0",
        "10.255.255.255",
        "::ffff:10.9.8.7",
        "::1",
        "fd12:3456::1",
        "192.168.44.1",
        "::ffff:192.168.1.1",
    ] {
        assert!(trusted.contains(ip(yes)), "{yes}");
    }
    for no in [
        "127.0.0.2",
        "11.0.0.1",
        "::2",
        "fe80::1",
        "::ffff:11.0.0.1",
        "192.169.0.1",
        "0.0.0.0",
    ] {
        assert!(!trusted.contains(ip(no)), "{no}");
    }
    assert!(!trusted.trusts_unix_peers());
    assert!(trusted.clone().with_unix_peers(true).trusts_unix_peers());
    assert_eq!(trusted.networks().len(), 5);
    assert_eq!(
        trusted.networks()[4],
        "192.168.0.0/16".parse::<IpNetwork>().unwrap()
    );

    let everyone = TrustedProxies::parse(["0.0.0.0/0", "::/0"]).unwrap();
    assert!(everyone.contains(ip("203.0.113.9")) && everyone.contains(ip("2001:db8::9")));
    assert!(TrustedProxies::new().is_empty());
    assert!(!TrustedProxies::new().contains(ip("127.0.0.1")));
    assert!(!TrustedProxies::new().with_unix_peers(true).is_empty());
}

#[test]
fn trusted_proxies_errors_name_the_bad_text() {
    let cases = [
        ("10.0.0.1/8", "host bits are set; the network is 10.0.0.0/8"),
        ("10.0.0.0/33", "prefix length 33 is longer than 32"),
        ("::/129", "longer than 128"),
        ("10.0.0.0/x", "prefix length \"x\""),
        ("10.0.0.0/", "prefix length \"\""),
        ("localhost", "\"localhost\" is not an IP address"),
        ("10.0.0.256", "not an IP address"),
    ];
    for (text, reason) in cases {
        let error = TrustedProxies::parse(["127.0.0.1", text]).unwrap_err();
        assert_eq!(error.text(), text);
        let message = error.to_string();
        assert!(
            message.contains(&format!("\"{text}\"")) && message.contains(reason),
            "{message}"
        );
        let io: std::io::Error = error.into();
        assert_eq!(io.kind(), ErrorKind::InvalidInput);
    }
}

// ------------------------------------------------------------ read_header

/// A connected loopback pair: (the proxy's end, the server's end).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = util::connect(listener.local_addr().unwrap());
    proxy.set_nodelay(true).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(TIMEOUT)).unwrap();
    (proxy, server)
}

fn soon() -> Instant {
    Instant::now() + TIMEOUT
}

/// Reads what is left after the header until the proxy's end closes.
fn rest_of(server: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).unwrap();
    rest
}

/// Whether the server's receive queue is empty: every byte sent so far has
/// been consumed.
fn drained(server: &TcpStream) -> bool {
    let mut probe = [MaybeUninit::uninit(); 1];
    let peeked =
        socket2::SockRef::from(server).recv_with_flags(&mut probe, libc::MSG_PEEK | libc::MSG_DONTWAIT);
    matches!(peeked, Err(ref e) if e.kind() == ErrorKind::WouldBlock)
}

fn sample_headers() -> Vec<ProxyHeader> {
    let (s, d) = (addr("203.0.113.7:51234"), addr("192.0.2.1:443"));
    vec![
        ProxyHeader::new_v1(s, d),
        ProxyHeader::new_v2(s, d)
            .with_unique_id(b"abc")
            .with_tlv(Tlv::CRC32C, [0; 4]),
        ProxyHeader::local(),
        ProxyHeader::unknown(Version::V1),
    ]
}

#[test]
fn header_and_payload_in_one_write_leave_exactly_the_payload() {
    for header in sample_headers() {
        let (mut proxy, mut server) = tcp_pair();
        let mut wire = header.to_bytes().unwrap();
        wire.extend_from_slice(b"PROXY TCP4 this is payload, not a header\r\n");
        proxy.write_all(&wire).unwrap();
        drop(proxy);
        let got = read_header(&server, soon()).unwrap();
        assert_eq!(without_crc_values(got), without_crc_values(header));
        assert_eq!(
            rest_of(&mut server),
            b"PROXY TCP4 this is payload, not a header\r\n"
        );
    }
}

#[test]
fn header_split_over_several_writes() {
    let (s, d) = (addr("[2001:db8::7]:51234"), addr("[2001:db8::1]:443"));
    let headers = [
        ProxyHeader::new_v1(s, d),
        // Large enough to outgrow the reader's first buffer several times.
        ProxyHeader::new_v2(s, d)
            .with_tlv(0xE0, vec![b'x'; 3000])
            .with_tlv(Tlv::CRC32C, [0; 4]),
    ];
    for header in headers {
        let wire = [header.to_bytes().unwrap(), b"after".to_vec()].concat();
        let header_len = wire.len() - 5;
        // Pieces: 1 byte, up to the v2 fixed part, to mid-address, most of
        // the rest, the last header byte together with the payload.
        let cuts = [0, 1, 14, 30, header_len - 1, wire.len()];
        let (mut proxy, server) = tcp_pair();
        let probe = server.try_clone().unwrap();
        let reader = thread::spawn(move || (read_header(&server, soon()), server));
        for piece in cuts.windows(2) {
            proxy.write_all(&wire[piece[0]..piece[1]]).unwrap();
            if piece[1] < header_len {
                // Wait until the reader took the piece (it consumes an
                // incomplete header's bytes), so the next one arrives apart.
                let until = Instant::now() + TIMEOUT;
                while !drained(&probe) {
                    assert!(
                        Instant::now() < until,
                        "the reader never consumed the first pieces"
                    );
                    thread::yield_now();
                }
            }
        }
        drop(proxy);
        let (got, mut server) = within(TIMEOUT, "read_header", move || reader.join().unwrap());
        assert_eq!(without_crc_values(got.unwrap()), without_crc_values(header));
        assert_eq!(rest_of(&mut server), b"after");
    }
}

#[test]
fn a_stalled_half_header_times_out_at_the_deadline() {
    let (mut proxy, server) = tcp_pair();
    proxy.write_all(b"PROXY TCP4 1.2.3.4 ").unwrap();
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    let error = within(TIMEOUT, "read_header", move || {
        read_header(&server, started + limit)
    })
    .unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
    assert!(error.to_string().contains("19 bytes"), "{error}");
    assert!(took >= limit && took < limit + Duration::from_secs(2), "{took:?}");
    drop(proxy);
}

#[test]
fn a_trickling_peer_cannot_stretch_the_deadline() {
    let (mut proxy, server) = tcp_pair();
    // One byte every 20 ms: each wait is short, the whole v1 line would
    // take over a second.
    let trickle = thread::spawn(move || {
        for byte in b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n" {
            if proxy.write_all(&[*byte]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    });
    let limit = Duration::from_millis(300);
    let started = Instant::now();
    let error = within(TIMEOUT, "read_header", move || {
        read_header(&server, started + limit)
    })
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
    assert!(
        started.elapsed() < limit + Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    trickle.join().unwrap();
}

#[test]
fn garbage_is_invalid_data_with_the_reason() {
    let (mut proxy, server) = tcp_pair();
    proxy.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let error = read_header(&server, soon()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData);
    assert!(error.to_string().contains("neither the v1 signature"), "{error}");

    // Garbage after a good start is refused without waiting for more.
    let (mut proxy, server) = tcp_pair();
    proxy.write_all(b"PROXY TCP9").unwrap();
    let error = read_header(&server, soon()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData);
    assert!(error.to_string().contains("\"TCP9\""), "{error}");
}

#[test]
fn a_peer_that_closes_mid_header_is_unexpected_eof() {
    let (mut proxy, server) = tcp_pair();
    proxy.write_all(&V2_SIGNATURE[..7]).unwrap();
    drop(proxy);
    let error = read_header(&server, soon()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "{error}");
    assert!(error.to_string().contains("after 7 bytes"), "{error}");

    let (proxy, server) = tcp_pair();
    drop(proxy);
    assert_eq!(
        read_header(&server, soon()).unwrap_err().kind(),
        ErrorKind::UnexpectedEof
    );
}

#[test]
fn the_read_timeout_is_restored() {
    for previous in [Some(Duration::from_secs(30)), None] {
        // After success.
        let (mut proxy, server) = tcp_pair();
        server.set_read_timeout(previous).unwrap();
        proxy.write_all(b"PROXY UNKNOWN\r\n").unwrap();
        read_header(&server, soon()).unwrap();
        assert_eq!(server.read_timeout().unwrap(), previous);
        // After a timeout.
        let (mut proxy, server) = tcp_pair();
        server.set_read_timeout(previous).unwrap();
        proxy.write_all(b"PROXY").unwrap();
        let error = read_header(&server, Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TimedOut);
        assert_eq!(server.read_timeout().unwrap(), previous);
    }
}

#[test]
fn a_past_deadline_times_out_at_once() {
    let (mut proxy, server) = tcp_pair();
    proxy.write_all(b"PROXY UNKNOWN\r\n").unwrap();
    let error = read_header(&server, Instant::now()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TimedOut);
}

#[test]
fn a_non_blocking_stream_is_refused() {
    let (_proxy, server) = tcp_pair();
    server.set_nonblocking(true).unwrap();
    assert_eq!(
        read_header(&server, soon()).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn read_header_over_a_unix_stream() {
    let (mut proxy, mut server) = UnixStream::pair().unwrap();
    server.set_read_timeout(Some(TIMEOUT)).unwrap();
    let header = ProxyHeader {
        addresses: ProxyAddresses::Unix {
            transport: Transport::Stream,
            source: UnixAddress::new("/run/client.sock").unwrap(),
            destination: UnixAddress::new("/run/server.sock").unwrap(),
        },
        ..ProxyHeader::new_v2(addr("1.2.3.4:1"), addr("5.6.7.8:2"))
    };
    proxy
        .write_all(&[header.to_v2().unwrap(), b"tail".to_vec()].concat())
        .unwrap();
    drop(proxy);
    assert_eq!(read_header(&server, soon()).unwrap(), header);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"tail");
}
