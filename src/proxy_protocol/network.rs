//! Which peers are proxies: addresses and networks, IPv4 and IPv6.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length, such as `10.0.0.0/8`,
/// `fd00::/8`, or a single host (`127.0.0.1` is `127.0.0.1/32`).
///
/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is stored as the
/// IPv4 network it denotes, so it matches IPv4 peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a text is not an address or network; names the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkParseError {
    text: String,
    reason: String,
}

impl NetworkParseError {
    fn new(text: &str, reason: impl Into<String>) -> Self {
        NetworkParseError {
            text: text.to_owned(),
            reason: reason.into(),
        }
    }

    /// The text that failed to parse.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for NetworkParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid proxy address or network \"{}\": {}",
            self.text, self.reason
        )
    }
}

impl std::error::Error for NetworkParseError {}

impl From<NetworkParseError> for io::Error {
    fn from(e: NetworkParseError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
    }
}

impl IpNetwork {
    /// The network of `addr` with `prefix_len` leading bits (at most 32
    /// for IPv4, 128 for IPv6); the other bits of `addr` must be zero.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, NetworkParseError> {
        let text = || format!("{addr}/{prefix_len}");
        let max = max_prefix(addr);
        if prefix_len > max {
            return Err(NetworkParseError::new(
                &text(),
                format!("prefix length {prefix_len} is longer than {max}"),
            ));
        }
        let network = IpNetwork { addr, prefix_len };
        if network.masked(addr) != addr {
            return Err(NetworkParseError::new(
                &text(),
                format!(
                    "host bits are set; the network is {}/{prefix_len}",
                    network.masked(addr)
                ),
            ));
        }
        // ::ffff:a.b.c.d/n (n >= 96) is the IPv4 network a.b.c.d/(n - 96).
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
            && prefix_len >= 96
        {
            return Ok(IpNetwork {
                addr: IpAddr::V4(v4),
                prefix_len: prefix_len - 96,
            });
        }
        Ok(network)
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// How many leading bits are the network's.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, how a dual-stack socket reports an IPv4 peer)
    /// is taken as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == self.addr
    }

    /// `ip` with the bits past the prefix cleared (same family as `ip`).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix_len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & mask))
            }
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

impl FromStr for IpNetwork {
    type Err = NetworkParseError;

    /// `ADDRESS` (a single host) or `ADDRESS/PREFIX_LEN`, IPv4 or IPv6.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (addr_text, prefix_text) = match trimmed.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (trimmed, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| NetworkParseError::new(text, format!("\"{addr_text}\" is not an IP address")))?;
        let prefix_len = match prefix_text {
            None => max_prefix(addr),
            Some(p) => p.parse::<u8>().map_err(|_| {
                NetworkParseError::new(
                    text,
                    format!("prefix length \"{p}\" is not a number 0-{}", max_prefix(addr)),
                )
            })?,
        };
        IpNetwork::new(addr, prefix_len).map_err(|e| NetworkParseError::new(text, e.reason))
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// The peers that are proxies, and so must begin each connection with a
/// PROXY header: IP networks, and optionally every Unix-domain peer (which
/// has no IP address; anyone who can open the socket file is trusted, so
/// guard it with its permissions).
///
/// Empty by default: nobody is trusted.
///
/// ```
/// use socketserver::proxy_protocol::TrustedProxies;
///
/// let trusted = TrustedProxies::parse(["127.0.0.1", "10.0.0.0/8", "fd00::/8"])?;
/// assert!(trusted.contains("10.200.0.1".parse().unwrap()));
/// assert!(trusted.contains("::ffff:127.0.0.1".parse().unwrap())); // IPv4 on a dual-stack socket
/// assert!(!trusted.contains("127.0.0.2".parse().unwrap()));
/// assert!(!trusted.trusts_unix_peers());
///
/// let err = TrustedProxies::parse(["10.0.0.0/8", "10.0.0.1/8"]).unwrap_err();
/// assert_eq!(err.text(), "10.0.0.1/8");
/// # Ok::<(), socketserver::proxy_protocol::NetworkParseError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNetwork>,
    unix_peers: bool,
}

impl TrustedProxies {
    /// Trusts nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the networks in `items` (see [`IpNetwork`]'s `FromStr`); the
    /// error names the first that does not parse.
    pub fn parse<I>(items: I) -> Result<Self, NetworkParseError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        items.into_iter().map(|s| s.as_ref().parse()).collect()
    }

    /// Also trusts `network`.
    pub fn with(mut self, network: IpNetwork) -> Self {
        self.networks.push(network);
        self
    }

    /// Trusts every Unix-domain peer, or none.
    pub fn with_unix_peers(mut self, trusted: bool) -> Self {
        self.unix_peers = trusted;
        self
    }

    /// Whether `ip` is in one of the trusted networks (an IPv4-mapped IPv6
    /// address matches the IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// Whether Unix-domain peers are trusted.
    pub fn trusts_unix_peers(&self) -> bool {
        self.unix_peers
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[IpNetwork] {
        &self.networks
    }

    /// Whether nobody is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && !self.unix_peers
    }
}

impl FromIterator<IpNetwork> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpNetwork>>(iter: I) -> Self {
        TrustedProxies {
            networks: iter.into_iter().collect(),
            unix_peers: false,
        }
    }
}

impl Extend<IpNetwork> for TrustedProxies {
    fn extend<I: IntoIterator<Item = IpNetwork>>(&mut self, iter: I) {
        self.networks.extend(iter);
    }
}

impl FromStr for TrustedProxies {
    type Err = NetworkParseError;

    /// Networks separated by commas and/or whitespace:
    /// `"127.0.0.1, 10.0.0.0/8 ::1"`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TrustedProxies::parse(
            text.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty()),
        )
    }
}
