//! Descriptors passed from one process to the next: taking ownership of
//! the ones this process inherited, and keeping chosen ones open across
//! `exec` for a process it starts.
//!
//! Socket activation (systemd) and a restart that hands sockets to a new
//! process both pass listening sockets as inherited descriptors whose
//! numbers an environment variable announces. Turning such a number into
//! an owned descriptor is where the unsafety lies; these functions do it
//! at most once per number, and only for numbers that are open.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// Descriptor numbers [`adopt_inherited`] has handed out, so none gets two
/// owners.
static ADOPTED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of descriptor `fd`, which this process inherited from
/// the one that started it, and marks it close-on-exec so it does not leak
/// into processes this one starts.
///
/// Each number is adopted at most once per process: a second call fails
/// with `AlreadyExists`. Standard input, output and error (0 to 2) and
/// negative numbers are `InvalidInput`; a number with nothing open is the
/// OS error (`EBADF`).
///
/// The callers take the numbers from the protocol that passed them
/// (`LISTEN_FDS` for systemd, the handover's variables for a restart),
/// after checking that the protocol's process id names this process (or
/// its parent, for a handover), and they run at start-up, before anything
/// else in the process opens descriptors that could sit at those numbers.
pub(crate) fn adopt_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    if fd <= libc::STDERR_FILENO {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "fd {fd} cannot be an inherited socket (0, 1 and 2 are standard input, output and error)"
            ),
        ));
    }
    let mut adopted = ADOPTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if adopted.contains(&fd) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("fd {fd} has already been taken over"),
        ));
    }
    // SAFETY: F_GETFD and F_SETFD read and set the descriptor flags of a
    // number; on a number that is not open they fail with EBADF and change
    // nothing.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("inherited fd {fd}: {e}")));
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == -1 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot set close-on-exec on fd {fd}: {e}"),
        ));
    }
    adopted.push(fd);
    // SAFETY: `fd` is open (F_GETFD succeeded), was passed to this process
    // by the protocol the caller checked, and has not been adopted before
    // (the registry above), so this is its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether a socket is listening (`SO_ACCEPTCONN`): a stream socket that
/// `listen` was called on.
pub(crate) fn is_listening(socket: BorrowedFd<'_>) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given,
    // and the descriptor is borrowed, so open, for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(value != 0)
}

/// Makes `command` pass `fds` to the process it starts, at the same
/// numbers. They stay close-on-exec in this process, so no other process
/// started meanwhile (by any thread) receives them: the flag is cleared in
/// the forked child only, just before its `exec`.
///
/// Starting the process fails if one of them is not open at that moment.
#[cfg(feature = "restart")]
pub(crate) fn pass_on_exec(command: &mut std::process::Command, fds: Vec<RawFd>) {
    use std::os::unix::process::CommandExt;

    let clear_cloexec = move || {
        for &fd in &fds {
            // SAFETY: fcntl is async-signal-safe; on a number that is not
            // open it fails and the spawn reports the error.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            // SAFETY: as above.
            if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before `exec`, where
    // only async-signal-safe calls are allowed: it calls fcntl alone,
    // iterates a vector allocated before the fork, and builds its error
    // from errno without allocating.
    unsafe {
        command.pre_exec(clear_cloexec);
    }
}

/// Removes environment variables, but only while this process runs a
/// single thread, and says whether it did.
///
/// Changing the environment races with any other thread that reads it
/// (`getenv` in C code included), which is why `std::env::remove_var` is
/// unsafe. With one thread there is nobody to race: only this thread could
/// start another, and it is here. Where the thread count cannot be read
/// (outside Linux), nothing is removed.
pub(crate) fn remove_env_if_single_threaded(names: &[&str]) -> bool {
    if thread_count() != Some(1) {
        return false;
    }
    for name in names {
        // SAFETY: this process has exactly one thread (checked above), so
        // no other thread can read or write the environment meanwhile.
        unsafe { std::env::remove_var(name) };
    }
    true
}

/// The number of threads in this process, where the OS tells.
fn thread_count() -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|count| count.trim().parse().ok())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, IntoRawFd};
    use std::os::unix::net::UnixStream;

    #[test]
    fn an_fd_is_adopted_once() {
        let (a, _b) = UnixStream::pair().unwrap();
        let raw = a.into_raw_fd();
        let owned = adopt_inherited(raw).unwrap();
        let again = adopt_inherited(raw).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        drop(owned);
    }

    #[test]
    fn stdio_and_closed_numbers_are_refused() {
        assert_eq!(
            adopt_inherited(1).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // Far above anything a test process opens (the limit here is lower).
        let closed = adopt_inherited(1 << 24).unwrap_err().to_string();
        assert!(
            closed.starts_with("inherited fd 16777216: Bad file descriptor"),
            "{closed}"
        );
    }

    #[test]
    fn listening_is_told_apart() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening(listener.as_fd()).unwrap());
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(!is_listening(a.as_fd()).unwrap());
    }

    #[test]
    fn a_threaded_process_keeps_its_environment() {
        // The test harness runs this on a thread of its own.
        assert!(!remove_env_if_single_threaded(&["SOCKETSERVER_NEVER_SET"]));
    }
}
