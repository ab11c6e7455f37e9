//! An echo server on a Unix-domain socket: a file clients connect to,
//! reachable from this machine only, guarded by the file's permissions.
//!
//! ```text
//! cargo run --example echo_unix                       # on $TMPDIR/echo_unix.sock
//! cargo run --example echo_unix -- /run/user/1000/echo.sock
//! nc -U /tmp/echo_unix.sock                           # type lines; Ctrl-D leaves
//! ```
//!
//! The server removes the socket file when it drops, so Ctrl-C and
//! SIGTERM are caught to stop it cleanly: a killed server would leave the
//! file behind (the next one replaces it, once nobody answers there).

use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socketserver::{KeepAliveHandler, Next, ShutdownHandle, ThreadingUnixStreamServer, UnixStreamRequest};

/// Sends each line back. One call serves one request, a line.
struct Echo;

/// A longer line goes back in pieces of this size: memory stays bounded.
const MAX_LINE: u64 = 64 * 1024;

impl KeepAliveHandler<UnixStreamRequest> for Echo {
    /// Nothing to remember between two requests of a connection.
    type State = ();

    fn handle_one(&self, request: &mut UnixStreamRequest, _: &mut ()) -> io::Result<Next> {
        let mut line = Vec::new();
        if (&mut *request).take(MAX_LINE).read_until(b'\n', &mut line)? == 0 {
            return Ok(Next::Close); // the client has closed its end
        }
        request.write_all(&line)?;
        Ok(Next::KeepOpen)
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let path = match std::env::args().nth(1) {
        Some(arg) if arg.starts_with('-') => {
            eprintln!("usage: echo_unix [PATH]   (default $TMPDIR/echo_unix.sock)");
            return ExitCode::from(2);
        }
        Some(arg) => PathBuf::from(arg),
        None => std::env::temp_dir().join("echo_unix.sock"),
    };
    if let Err(e) = serve(&path) {
        eprintln!("echo_unix: {e}"); // a bind error names the path
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn serve(path: &Path) -> io::Result<()> {
    let server = ThreadingUnixStreamServer::bind(path, Echo)?;
    println!("listening on {}", path.display());
    println!("talk to it: nc -U {}", path.display());
    stop_on_signals(server.shutdown_handle())?;
    server.serve_forever()
} // the server drops here and removes the socket file

/// Ctrl-C or SIGTERM: stop cleanly (serve_forever returns) instead of dying.
fn stop_on_signals(stop: ShutdownHandle) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || signals.forever().next().map(|_| stop.shutdown()));
    Ok(())
}
