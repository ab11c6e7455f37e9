//! A header to bytes, for senders: test clients, load generators, proxies.
//!
//! What the encoders emit, the parser accepts and reads back as the same
//! header; what the parser would refuse, they refuse to emit.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::parse::{MAX_V1_LEN, V1_SIGNATURE, V2_SIGNATURE};
use super::tlv::{self, Tlv};
use super::{Command, ProxyAddresses, ProxyHeader, Transport, Version};

fn refuse<T>(reason: String) -> io::Result<T> {
    Err(io::Error::new(io::ErrorKind::InvalidInput, reason))
}

impl ProxyHeader {
    /// The header's bytes in the format its [`version`](Self::version)
    /// names.
    pub fn to_bytes(&self) -> io::Result<Vec<u8>> {
        match self.version {
            Version::V1 => self.to_v1(),
            Version::V2 => self.to_v2(),
        }
    }

    /// The v1 line, CRLF included (whatever [`version`](Self::version)
    /// says): `PROXY TCP4|TCP6 src dst sport dport\r\n` for TCP addresses,
    /// `PROXY UNKNOWN\r\n` for unknown ones.
    ///
    /// `InvalidInput` for what v1 cannot say: a `LOCAL` command, TLVs, UDP
    /// or Unix-domain addresses, a source and destination of different IP
    /// versions.
    ///
    /// ```
    /// use socketserver::proxy_protocol::ProxyHeader;
    ///
    /// let header = ProxyHeader::new_v1("192.168.0.1:56324".parse().unwrap(), "192.168.0.11:443".parse().unwrap());
    /// assert_eq!(header.to_v1()?, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn to_v1(&self) -> io::Result<Vec<u8>> {
        if self.command == Command::Local {
            return refuse("v1 has no LOCAL command (send UNKNOWN, or use v2)".into());
        }
        if !self.tlvs.is_empty() {
            return refuse(format!(
                "v1 carries no TLVs, and this header has {}",
                self.tlvs.len()
            ));
        }
        let mut line = String::from_utf8_lossy(V1_SIGNATURE).into_owned();
        match &self.addresses {
            ProxyAddresses::Unknown => line.push_str("UNKNOWN"),
            ProxyAddresses::Inet {
                transport: Transport::Stream,
                source,
                destination,
            } => {
                let protocol = match (source.ip(), destination.ip()) {
                    (IpAddr::V4(_), IpAddr::V4(_)) => "TCP4",
                    (IpAddr::V6(_), IpAddr::V6(_)) => "TCP6",
                    _ => return refuse(mixed_families(source, destination)),
                };
                let _ = write!(
                    line,
                    "{protocol} {} {} {} {}",
                    v1_ip(source.ip()),
                    v1_ip(destination.ip()),
                    source.port(),
                    destination.port()
                );
            }
            ProxyAddresses::Inet { .. } => return refuse("v1 carries TCP only, not UDP".into()),
            ProxyAddresses::Unix { .. } => return refuse("v1 carries no Unix-domain addresses".into()),
        }
        line.push_str("\r\n");
        debug_assert!(line.len() <= MAX_V1_LEN);
        Ok(line.into_bytes())
    }

    /// The v2 header (whatever [`version`](Self::version) says): the
    /// signature, version and command, family and transport, length,
    /// addresses and TLVs in order. A [`Tlv::CRC32C`] TLV gets the header's
    /// checksum, whatever value it holds.
    ///
    /// `InvalidInput` for what v2 cannot say or the parser would refuse: a
    /// source and destination of different IP versions, a TLV over 65,535
    /// bytes or a header over [`MAX_V2_LEN`](super::MAX_V2_LEN), a known
    /// TLV whose value breaks its type's rules (see [`Tlv`]), more than one
    /// CRC32C TLV.
    pub fn to_v2(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(16 + 216);
        out.extend_from_slice(V2_SIGNATURE);
        out.push(
            0x20 | match self.command {
                Command::Local => 0,
                Command::Proxy => 1,
            },
        );
        out.push(0); // family and transport, below
        out.extend_from_slice(&[0, 0]); // length, at the end
        out[13] = match &self.addresses {
            ProxyAddresses::Unknown => 0x00,
            ProxyAddresses::Inet {
                transport,
                source,
                destination,
            } => match (source.ip(), destination.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                    push_ports(&mut out, source, destination);
                    0x10 | transport_bits(*transport)
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                    push_ports(&mut out, source, destination);
                    0x20 | transport_bits(*transport)
                }
                _ => return refuse(mixed_families(source, destination)),
            },
            ProxyAddresses::Unix {
                transport,
                source,
                destination,
            } => {
                out.extend_from_slice(source.as_raw());
                out.extend_from_slice(destination.as_raw());
                0x30 | transport_bits(*transport)
            }
        };
        let mut crc_field = None;
        for t in &self.tlvs {
            tlv::validate(t.kind, &t.value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            if t.kind == Tlv::CRC32C {
                if crc_field.is_some() {
                    return refuse("more than one CRC32C TLV".into());
                }
                crc_field = Some(out.len() + 3);
                tlv::push_tlv(&mut out, t.kind, &[0; 4])
            } else {
                tlv::push_tlv(&mut out, t.kind, &t.value)
            }
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let Ok(len) = u16::try_from(out.len() - 16) else {
            return refuse(format!(
                "v2 header of {} bytes, over the {} its length field allows",
                out.len(),
                super::MAX_V2_LEN
            ));
        };
        out[14..16].copy_from_slice(&len.to_be_bytes());
        if let Some(field) = crc_field {
            let crc = tlv::crc32c_with_zeroed(&out, field);
            out[field..field + 4].copy_from_slice(&crc.to_be_bytes());
        }
        Ok(out)
    }
}

fn transport_bits(transport: Transport) -> u8 {
    match transport {
        Transport::Stream => 1,
        Transport::Datagram => 2,
    }
}

fn push_ports(out: &mut Vec<u8>, source: &SocketAddr, destination: &SocketAddr) {
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
}

fn mixed_families(source: &SocketAddr, destination: &SocketAddr) -> String {
    format!("source {source} and destination {destination} are not of the same IP version")
}

/// An address as v1 writes it: dotted decimal for IPv4, hex groups for
/// IPv6 (also for an IPv4-mapped one, which `Display` would write with a
/// dotted tail the specification does not describe).
fn v1_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            let s = v6.segments();
            format!("::ffff:{:x}:{:x}", s[6], s[7])
        }
        IpAddr::V6(v6) => Ipv6Addr::to_string(&v6),
        IpAddr::V4(v4) => v4.to_string(),
    }
}
