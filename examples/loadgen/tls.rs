//! `--tls`: the tcp and churn clients over TLS (rustls), and the count of
//! full and resumed handshakes.
//!
//! Every client shares one rustls configuration, hence one session cache:
//! a connection resumes a session an earlier one left (TLS 1.3 tickets)
//! unless `--no-resume` turned resumption off, so churn mode measures
//! either resumed or full handshakes per second.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, StreamOwned};
use serde_json::{Value, json};

use crate::batch::Link;
use crate::deadline::Deadlined;
use crate::record::{Sent, Window};

/// What every TLS client shares: the configuration (with its session
/// cache), the name the server's certificate must carry, the counts.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    resume: bool,
    window: Window,
    full: AtomicU64,
    resumed: AtomicU64,
}

impl TlsClient {
    /// Clients that trust the CA certificates in the PEM file `ca` and
    /// expect the server to be `host` (a DNS name or an IP address).
    pub fn new(ca: &Path, host: &str, resume: bool, window: Window) -> io::Result<Self> {
        Self::with_config(crate::common::tls::client_config(ca, None)?, host, resume, window)
    }

    /// Clients on `config` (its roots, its client certificate) that expect
    /// the server to be `host`.
    pub fn with_config(
        mut config: ClientConfig,
        host: &str,
        resume: bool,
        window: Window,
    ) -> io::Result<Self> {
        if !resume {
            config.resumption = Resumption::disabled();
        }
        Ok(TlsClient {
            config: Arc::new(config),
            server_name: crate::common::tls::server_name(host)?,
            resume,
            window,
            full: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
        })
    }

    /// Starts TLS on a connected stream; the handshake happens with the
    /// first exchange.
    pub fn wrap(self: &Arc<Self>, stream: Deadlined) -> io::Result<TlsConnection> {
        let connection = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(io::Error::other)?;
        Ok(TlsConnection {
            stream: StreamOwned::new(connection, stream),
            tls: Arc::clone(self),
            counted: false,
        })
    }

    /// Counts a finished handshake that began in the measured window.
    fn count(&self, kind: Option<HandshakeKind>, began: Instant) {
        if began < self.window.start || began >= self.window.end {
            return;
        }
        let counter = match kind {
            Some(HandshakeKind::Resumed) => &self.resumed,
            Some(_) => &self.full,
            None => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn rates(&self) -> [(u64, f64); 2] {
        let seconds = self.window.length().as_secs_f64();
        [&self.full, &self.resumed].map(|counter| {
            let count = counter.load(Ordering::Relaxed);
            (count, count as f64 / seconds)
        })
    }

    /// The report's line.
    pub fn text(&self) -> String {
        let [(full, full_rate), (resumed, resumed_rate)] = self.rates();
        format!("handshakes   {full} full ({full_rate:.0}/s), {resumed} resumed ({resumed_rate:.0}/s)\n")
    }

    /// The report's object.
    pub fn json(&self) -> Value {
        let [(full, full_rate), (resumed, resumed_rate)] = self.rates();
        json!({
            "resumption": self.resume,
            "full_handshakes": full,
            "full_per_second": full_rate,
            "resumed_handshakes": resumed,
            "resumed_per_second": resumed_rate,
        })
    }
}

/// One client connection over TLS.
pub struct TlsConnection {
    stream: StreamOwned<ClientConnection, Deadlined>,
    /// Where its handshake is counted.
    tls: Arc<TlsClient>,
    counted: bool,
}

impl Read for TlsConnection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for TlsConnection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Batches go out over the session; the first exchange on a connection
/// also runs the handshake, counted when its reply comes if the batch
/// (`sent`) counts.
impl Link for TlsConnection {
    fn set_deadline(&mut self, deadline: Instant) {
        self.stream.sock.set_deadline(Some(deadline));
    }

    fn replied(&mut self, sent: Sent) {
        if !self.counted {
            self.counted = true;
            self.tls.count(self.stream.conn.handshake_kind(), sent.at);
        }
    }
}

impl Drop for TlsConnection {
    /// Ends the session cleanly (close_notify), so that the server does
    /// not count a truncated connection.
    fn drop(&mut self) {
        // Bounded by the socket's own timeouts, whatever the last
        // request's deadline was.
        self.stream.sock.set_deadline(None);
        crate::common::tls::close_session(&mut self.stream);
    }
}
