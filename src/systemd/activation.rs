//! Socket activation: adopting the sockets systemd passes.
//!
//! systemd (or `systemd-socket-activate`) binds the sockets a `.socket`
//! unit lists and starts the service with them open at descriptors 3, 4,
//! ..., announced by three variables: `LISTEN_PID` (the process they are
//! for), `LISTEN_FDS` (how many) and `LISTEN_FDNAMES` (their names,
//! colon-separated, from `FileDescriptorName=`; the socket unit's name by
//! default). See `sd_listen_fds(3)`.

use std::fmt;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::socket::{PassedSocket, SocketKind, check_kind, parse_number};
use crate::sys::fd::{adopt_inherited, remove_env_if_single_threaded};

/// The first passed descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

const LISTEN_PID: &str = "LISTEN_PID";
const LISTEN_FDS: &str = "LISTEN_FDS";
const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";

/// Set by the first [`ListenFds::take`].
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The sockets systemd passed to this process, taken over once at start-up
/// and then claimed one by one as the std type each must be.
///
/// ```no_run
/// use socketserver::systemd::{self, ListenFds};
/// use socketserver::{ThreadingTcpServer, echo::Uppercase};
///
/// let mut activated = ListenFds::take()?; // first thing in main
/// let server = if activated.is_empty() {
///     ThreadingTcpServer::bind("127.0.0.1:9999", Uppercase)?
/// } else {
///     // The first socket, or by name: activated.tcp_listener("web")
///     ThreadingTcpServer::builder().from_listener(activated.tcp_listener(0)?, Uppercase)?
/// };
/// systemd::ready()?;
/// server.serve_forever()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Sockets never claimed are closed when this is dropped (systemd keeps
/// its own copies).
pub struct ListenFds {
    passed: Vec<Passed>,
    /// Why nothing was passed, for error messages.
    absent: Option<String>,
}

/// One passed descriptor; `fd` is `None` once claimed.
struct Passed {
    number: RawFd,
    name: String,
    fd: Option<OwnedFd>,
}

impl Passed {
    fn describe(&self) -> String {
        format!("fd {} (name '{}')", self.number, self.name)
    }
}

/// Which passed socket to claim: by position (`0` is descriptor 3) or by
/// name (`FileDescriptorName=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which<'a> {
    /// The n-th passed socket, from 0.
    Index(usize),
    /// The first unclaimed socket of this name that is of the kind asked
    /// for (one `.socket` unit with several `Listen*=` lines passes them
    /// all under the unit's name).
    Name(&'a str),
}

impl From<usize> for Which<'_> {
    fn from(index: usize) -> Self {
        Which::Index(index)
    }
}

impl<'a> From<&'a str> for Which<'a> {
    fn from(name: &'a str) -> Self {
        Which::Name(name)
    }
}

impl ListenFds {
    /// Takes over the sockets passed to this process: checks that
    /// `LISTEN_PID` is this process, adopts descriptors 3 to
    /// 3 + `LISTEN_FDS` - 1 with their `LISTEN_FDNAMES`, and marks them
    /// close-on-exec so processes this one starts do not inherit them.
    ///
    /// Call it first thing in `main`. While the process still has a single
    /// thread it also removes the three variables, so processes this one
    /// starts do not see them (they would ignore them anyway: `LISTEN_PID`
    /// names this process).
    ///
    /// Without the variables, or when `LISTEN_PID` names another process
    /// (they were inherited from a parent), nothing was passed to this
    /// process and the result is empty. Malformed variables are an
    /// `InvalidInput` error; a second call in the same process is an
    /// `AlreadyExists` error, because each descriptor has one owner.
    pub fn take() -> io::Result<ListenFds> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the sockets passed by systemd have already been taken (ListenFds::take runs once per process)",
            ));
        }
        let taken = Self::from_env(std::process::id());
        remove_env_if_single_threaded(&[LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES]);
        let fds = taken?;
        if !fds.is_empty() {
            log::info!("socket activation: {fds:?}");
        }
        Ok(fds)
    }

    fn from_env(pid: u32) -> io::Result<ListenFds> {
        let var = |name| std::env::var(name).ok();
        let none = |why: String| {
            log::debug!("no sockets passed: {why}");
            Ok(ListenFds {
                passed: Vec::new(),
                absent: Some(why),
            })
        };
        let Some(listen_pid) = var(LISTEN_PID) else {
            return none("LISTEN_PID is not set".into());
        };
        let listen_pid: u32 = parse_number(LISTEN_PID, &listen_pid)?;
        if listen_pid != pid {
            return none(format!(
                "LISTEN_PID is {listen_pid}, not this process ({pid}): the sockets were meant for another process"
            ));
        }
        let Some(count) = var(LISTEN_FDS) else {
            return none("LISTEN_FDS is not set".into());
        };
        let count: usize = parse_number(LISTEN_FDS, &count)?;
        let names = match var(LISTEN_FDNAMES) {
            Some(names) => names.split(':').map(str::to_owned).collect(),
            // sd_listen_fds_with_names(3) calls them "unknown" then.
            None => vec!["unknown".to_owned(); count],
        };
        if names.len() != count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LISTEN_FDNAMES has {} names for LISTEN_FDS={count}", names.len()),
            ));
        }
        let mut passed = Vec::with_capacity(count);
        for (offset, name) in names.into_iter().enumerate() {
            let number = RawFd::try_from(offset)
                .ok()
                .and_then(|offset| FIRST_FD.checked_add(offset))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("LISTEN_FDS={count} is too large"),
                    )
                })?;
            let fd = adopt_inherited(number)
                .map_err(|e| io::Error::new(e.kind(), format!("LISTEN_FDS={count}, name '{name}': {e}")))?;
            passed.push(Passed {
                number,
                name,
                fd: Some(fd),
            });
        }
        let absent = passed.is_empty().then(|| "LISTEN_FDS is 0".to_owned());
        Ok(ListenFds { passed, absent })
    }

    /// How many sockets were passed (claimed ones included).
    pub fn len(&self) -> usize {
        self.passed.len()
    }

    /// Whether no socket was passed.
    pub fn is_empty(&self) -> bool {
        self.passed.is_empty()
    }

    /// The names of the passed sockets, in descriptor order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.passed.iter().map(|p| p.name.as_str())
    }

    /// What a passed socket is, e.g. to pick the server type for it.
    /// Claimed sockets are a `NotFound` error.
    pub fn kind<'a>(&self, which: impl Into<Which<'a>>) -> io::Result<SocketKind> {
        let which = which.into();
        let passed = match which {
            Which::Index(index) => self.at(index)?,
            Which::Name(name) => self
                .passed
                .iter()
                .find(|p| p.name == name && p.fd.is_some())
                .ok_or_else(|| self.not_found(which))?,
        };
        let fd = passed.fd.as_ref().ok_or_else(|| claimed(passed))?;
        SocketKind::of(fd.as_fd())
    }

    /// Claims a passed TCP listener. A socket of another kind is an
    /// `InvalidInput` error naming what it is ("fd 3 (name 'web') is a UDP
    /// socket, not a TCP listener") and stays unclaimed.
    pub fn tcp_listener<'a>(&mut self, which: impl Into<Which<'a>>) -> io::Result<TcpListener> {
        self.claim(which.into())
    }

    /// Claims a passed UDP socket (`ListenDatagram=` with an IP address).
    pub fn udp_socket<'a>(&mut self, which: impl Into<Which<'a>>) -> io::Result<UdpSocket> {
        self.claim(which.into())
    }

    /// Claims a passed Unix-domain stream listener (`ListenStream=` with a
    /// path). systemd owns the socket file.
    pub fn unix_listener<'a>(&mut self, which: impl Into<Which<'a>>) -> io::Result<UnixListener> {
        self.claim(which.into())
    }

    /// Claims a passed Unix-domain datagram socket (`ListenDatagram=` with
    /// a path).
    pub fn unix_datagram<'a>(&mut self, which: impl Into<Which<'a>>) -> io::Result<UnixDatagram> {
        self.claim(which.into())
    }

    /// Claims a passed socket as `S`, checking its kind first.
    pub fn socket<'a, S: PassedSocket>(&mut self, which: impl Into<Which<'a>>) -> io::Result<S> {
        self.claim(which.into())
    }

    fn claim<S: PassedSocket>(&mut self, which: Which<'_>) -> io::Result<S> {
        let index = self.find::<S>(which)?;
        let fd = self.passed[index]
            .fd
            .take()
            .ok_or_else(|| claimed(&self.passed[index]))?;
        log::debug!("claimed {} as {}", self.passed[index].describe(), S::KIND);
        Ok(S::from(fd))
    }

    /// The index of the socket `which` names, checked to be an `S`.
    fn find<S: PassedSocket>(&self, which: Which<'_>) -> io::Result<usize> {
        let check = |passed: &Passed| match &passed.fd {
            Some(fd) => check_kind::<S>(fd.as_fd(), &passed.describe()),
            None => Err(claimed(passed)),
        };
        match which {
            Which::Index(index) => check(self.at(index)?).map(|()| index),
            Which::Name(name) => {
                let mut named = self.passed.iter().enumerate().filter(|(_, p)| p.name == name);
                let (_, first) = named.clone().next().ok_or_else(|| self.not_found(which))?;
                if let Some((index, _)) = named.find(|(_, p)| check(p).is_ok()) {
                    return Ok(index);
                }
                // None fits: report on the first unclaimed one, or else on
                // the first one.
                let report = self
                    .passed
                    .iter()
                    .find(|p| p.name == name && p.fd.is_some())
                    .unwrap_or(first);
                Err(check(report).err().unwrap_or_else(|| claimed(report)))
            }
        }
    }

    fn at(&self, index: usize) -> io::Result<&Passed> {
        self.passed
            .get(index)
            .ok_or_else(|| self.not_found(Which::Index(index)))
    }

    fn not_found(&self, which: Which<'_>) -> io::Error {
        let wanted = match which {
            Which::Index(index) => format!("no socket number {index} (counting from 0)"),
            Which::Name(name) => format!("no socket named '{name}'"),
        };
        let passed = match &self.absent {
            Some(why) => format!("none was passed: {why}"),
            None => {
                let list: Vec<String> = self.passed.iter().map(Passed::describe).collect();
                format!("passed: {}", list.join(", "))
            }
        };
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{wanted} was passed by systemd ({passed})"),
        )
    }
}

fn claimed(passed: &Passed) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} has already been claimed", passed.describe()),
    )
}

impl fmt::Debug for ListenFds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for passed in &self.passed {
            match &passed.fd {
                Some(fd) => match SocketKind::of(fd.as_fd()) {
                    Ok(kind) => list.entry(&format_args!("{}: {kind}", passed.describe())),
                    Err(e) => list.entry(&format_args!("{}: {e}", passed.describe())),
                },
                None => list.entry(&format_args!("{}: claimed", passed.describe())),
            };
        }
        list.finish()
    }
}
