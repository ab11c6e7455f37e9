//! The `Server` trait: what every server does, whatever its transport and
//! mode (Python's `BaseServer` interface), for code that runs any of them.

use std::fmt::Debug;
use std::io;

use super::{ServerHandle, ShutdownHandle, Stats};

/// What every server offers: serving, its address, shutdown and stats.
///
/// Each server type has these as inherent methods too; the trait lets one
/// function run any of them:
///
/// ```
/// use socketserver::{Server, ThreadingTcpServer, ThreadingUdpServer, echo::Uppercase};
/// use std::thread;
///
/// /// Serves on a background thread until `stop` is called on the result.
/// fn start<S: Server>(server: S) -> socketserver::ShutdownHandle {
///     let stop = server.shutdown_handle();
///     println!("serving on {:?}", server.local_addr());
///     thread::spawn(move || server.serve_forever());
///     stop
/// }
///
/// let tcp = start(ThreadingTcpServer::bind("127.0.0.1:0", Uppercase)?);
/// let udp = start(ThreadingUdpServer::bind("127.0.0.1:0", Uppercase)?);
/// tcp.shutdown();
/// udp.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Server: Send + Sync + 'static {
    /// The address type: [`std::net::SocketAddr`] or
    /// [`std::os::unix::net::SocketAddr`].
    type Addr: Clone + Debug + Send + Sync + 'static;

    /// The handle handlers see: address, shutdown, stats.
    fn server_handle(&self) -> &ServerHandle<Self::Addr>;

    /// Serves until shutdown; see the server types' own documentation.
    fn serve_forever(&self) -> io::Result<()>;

    /// Serves at most one request; see the server types' own documentation.
    fn handle_request(&self) -> io::Result<bool>;

    /// The address the server is bound to.
    fn local_addr(&self) -> &Self::Addr {
        self.server_handle().local_addr()
    }

    /// A handle that stops the server from any thread.
    fn shutdown_handle(&self) -> ShutdownHandle {
        self.server_handle().shutdown_handle()
    }

    /// A snapshot of the server's counters.
    fn stats(&self) -> Stats {
        self.server_handle().stats()
    }
}
