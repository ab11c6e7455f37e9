//! An echo server over TLS, with a certificate made at start: nothing to
//! set up. The certificate is self-signed (its own CA) and written to a
//! temporary file for clients to trust, which is removed on exit. (A real
//! server loads its certificate: `TlsAcceptor::from_pem_files`.)
//!
//! ```text
//! cargo run --features tls --example echo_tls              # on 127.0.0.1:7003
//! openssl s_client -quiet -verify_return_error -CAfile FILE -connect 127.0.0.1:7003
//! ```

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use signal_hook::{consts::SIGINT, consts::SIGTERM, iterator::Signals};
use socketserver::tls::{TlsAcceptor, rustls::ServerConfig, rustls::pki_types::PrivatePkcs8KeyDer};
use socketserver::{KeepAliveHandler, Next, TcpRequest, ThreadingTcpServer};

/// Sends each line back, as plain text: the server does the TLS.
struct Echo;

impl KeepAliveHandler<TcpRequest> for Echo {
    type State = ();

    fn handle_one(&self, request: &mut TcpRequest, _: &mut ()) -> io::Result<Next> {
        let mut line = Vec::new();
        if (&mut *request).take(64 * 1024).read_until(b'\n', &mut line)? == 0 {
            return Ok(Next::Close);
        }
        request.write_all(&line)?;
        Ok(Next::KeepOpen)
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let arg = std::env::args().nth(1).unwrap_or("127.0.0.1:7003".into());
    let Ok(addr) = arg.parse::<SocketAddr>() else {
        eprintln!("usage: echo_tls [ADDRESS]   (default 127.0.0.1:7003; {arg:?} is no IP:PORT)");
        return ExitCode::from(2);
    };
    if let Err(e) = serve(addr) {
        eprintln!("echo_tls: {e}"); // a bind error names the address
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn serve(addr: SocketAddr) -> io::Result<()> {
    let (acceptor, cert_pem) = self_signed()?;
    let server = ThreadingTcpServer::builder().tls(acceptor).bind(addr, Echo)?;
    let (stop, mut signals) = (server.shutdown_handle(), Signals::new([SIGINT, SIGTERM])?);
    std::thread::spawn(move || signals.forever().next().map(|_| stop.shutdown()));
    let ca_file = std::env::temp_dir().join(format!("echo_tls-{}.pem", std::process::id()));
    let ca = ca_file.display();
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{ca}: {e}"));
    let mut file = std::fs::File::create_new(&ca_file).map_err(named)?; // never through a planted link
    let written = file.write_all(cert_pem.as_bytes()).map_err(named);
    written.inspect_err(|_| drop(std::fs::remove_file(&ca_file)))?; // nothing left behind
    let addr = server.local_addr();
    println!("listening on {addr}");
    println!("talk to it: openssl s_client -quiet -verify_return_error -CAfile {ca} -connect {addr}");
    let served = server.serve_forever();
    served.and(std::fs::remove_file(&ca_file).map_err(named)) // the server's error first
}

/// A certificate for this machine's names, and a TLS configuration with
/// it; the certificate in PEM, for clients to trust.
fn self_signed() -> io::Result<(TlsAcceptor, String)> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
    let made = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()).into();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .map_err(io::Error::other)?;
    Ok((TlsAcceptor::new(Arc::new(config)), made.cert.pem()))
}
