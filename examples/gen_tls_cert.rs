//! Writes a throw-away certificate authority, a server certificate it
//! issued, and a client certificate (for mutual TLS), as PEM files, to
//! try the TLS servers and tools by hand. Not for production: the CA's key
//! is never written, so nothing more can be issued, and the certificates
//! name loopback hosts only (by default).
//!
//! ```text
//! cargo run --example gen_tls_cert -- --out-dir target/tls
//! cargo run --example gen_tls_cert -- --out-dir target/tls --name myhost.lan --name 192.168.1.20 --force
//! ```
//!
//! Files: `ca.pem` (what clients trust), `server.pem` + `server.key`,
//! `client.pem` + `client.key`. Keys are readable by their owner only.
//! Existing files are left alone unless `--force` is given.

mod common;
#[path = "../tests/util/tls.rs"]
mod pki;

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Writes a test CA, a server certificate and a client certificate as PEM.
#[derive(Parser, Debug)]
#[command(name = "gen_tls_cert", version)]
struct Args {
    /// Directory to write into (created if missing).
    #[arg(long, default_value = "target/tls")]
    out_dir: PathBuf,
    /// Host names and IP addresses the server certificate is valid for
    /// (repeat the option for several). Default: localhost, 127.0.0.1, ::1.
    #[arg(long = "name", value_name = "NAME")]
    names: Vec<String>,
    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
}

const FILES: [&str; 5] = ["ca.pem", "server.pem", "server.key", "client.pem", "client.key"];

fn main() -> ExitCode {
    common::init_logging("warn");
    let args = Args::parse();
    common::exit("gen_tls_cert", run(&args))
}

fn run(args: &Args) -> io::Result<()> {
    // Checked first: a name no client can ask for makes a useless
    // certificate.
    for name in &args.names {
        common::tls::server_name(name).map_err(|e| io::Error::new(e.kind(), format!("--name: {e}")))?;
    }
    let dir = &args.out_dir;
    fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
    let existing = FILES.iter().map(|file| dir.join(file)).find(|path| path.exists());
    if let (false, Some(existing)) = (args.force, existing) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists; pass --force to replace it",
                existing.display()
            ),
        ));
    }
    let names: Vec<&str> = if args.names.is_empty() {
        pki::SERVER_NAMES.to_vec()
    } else {
        args.names.iter().map(String::as_str).collect()
    };
    let ca = pki::Ca::new("socketserver example CA");
    let server = ca.issue_server(&names);
    let client = ca.issue_client("socketserver example client");
    let written =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot write into {}: {e}", dir.display()));
    ca.write(dir, "ca").map_err(written)?;
    server.write(dir, "server").map_err(written)?;
    client.write(dir, "client").map_err(written)?;
    for file in FILES {
        println!("wrote {}", dir.join(file).display());
    }
    println!("server certificate valid for: {}", names.join(", "));
    Ok(())
}
