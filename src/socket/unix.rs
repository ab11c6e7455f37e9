//! Unix-domain sockets bound to a path: stale files, permissions, clean-up.
//!
//! A server that dies leaves its socket file behind, and binding the same
//! path then fails. Before binding, an existing socket file is probed: if
//! nothing answers on it, it is stale and replaced; if something answers,
//! binding fails with `AddrInUse`. A path that is not a socket is never
//! deleted. The file is removed when the server closes, unless it has been
//! replaced by someone else's in the meantime.

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use super::SocketOptions;

/// Binds a Unix stream listener at `path`.
pub(crate) fn bind_unix_listener(
    path: &Path,
    options: &SocketOptions,
) -> io::Result<(UnixListener, SocketFile)> {
    let (socket, file) = bind_path(path, Type::STREAM, options)?;
    // Permissions are set between bind and listen: no client can connect
    // before they apply.
    socket
        .listen(options.backlog)
        .map_err(|e| path_error(e, "cannot listen on", path))?;
    Ok((socket.into(), file))
}

/// Binds a Unix datagram socket at `path`.
pub(crate) fn bind_unix_datagram(
    path: &Path,
    options: &SocketOptions,
) -> io::Result<(UnixDatagram, SocketFile)> {
    let (socket, file) = bind_path(path, Type::DGRAM, options)?;
    Ok((socket.into(), file))
}

fn bind_path(path: &Path, ty: Type, options: &SocketOptions) -> io::Result<(Socket, SocketFile)> {
    let address = SockAddr::unix(path)?;
    clear_stale(path, ty)?;
    let socket = Socket::new(Domain::UNIX, ty, None)?;
    options.apply_buffers(&socket)?;
    socket
        .bind(&address)
        .map_err(|e| path_error(e, "cannot bind", path))?;
    if let Some(mode) = options.permissions
        && let Err(e) = fs::set_permissions(path, Permissions::from_mode(mode))
    {
        let _ = fs::remove_file(path);
        return Err(path_error(e, "cannot set the permissions of", path));
    }
    // Recorded after the permissions change, which changes the file.
    let file = SocketFile::created(path)?;
    Ok((socket, file))
}

/// Removes a socket file nobody answers on; refuses anything else.
fn clear_stale(path: &Path, ty: Type) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(path_error(e, "cannot inspect", path)),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; not replacing it", path.display()),
        ));
    }
    // Without blocking: a live server with a full backlog would otherwise
    // hold the probe (and whoever is binding) forever; "would block" means
    // someone is there.
    let probe = Socket::new(Domain::UNIX, ty, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Ok(()) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("a server is already listening on {}", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "a server is listening on {} (its backlog is full)",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            log::info!("replacing stale socket {}", path.display());
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(path_error(e, "cannot remove stale socket", path))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is a socket in use ({e})", path.display()),
        )),
    }
}

fn path_error(error: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{what} {}: {error}", path.display()))
}

/// The socket file a server created; removed on drop if it is still the
/// same file.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: Identity,
}

/// What tells one file from another at the same path. Inode numbers are
/// reused at once by some filesystems, so the change time and type count
/// too.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
    changed: (i64, i64),
    socket: bool,
}

impl Identity {
    fn of(path: &Path) -> io::Result<Self> {
        let metadata = fs::symlink_metadata(path)?;
        Ok(Identity {
            device: metadata.dev(),
            inode: metadata.ino(),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
            socket: metadata.file_type().is_socket(),
        })
    }
}

impl SocketFile {
    fn created(path: &Path) -> io::Result<Self> {
        Ok(SocketFile {
            path: path.to_owned(),
            identity: Identity::of(path)?,
        })
    }

    /// Leaves the file in place when this process is done with it: for a
    /// socket handed on to another process (a restart), which serves on it
    /// after this one exits, or bound for its caller to serve.
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = Identity::of(&self.path).is_ok_and(|now| now == self.identity);
        if ours && let Err(e) = fs::remove_file(&self.path) {
            log::warn!("cannot remove socket file {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("socketserver-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_replaced_file_is_not_removed() {
        let path = dir().join("replaced.sock");
        let _ = fs::remove_file(&path);
        let (listener, file) = bind_unix_listener(&path, &SocketOptions::without_address_reuse()).unwrap();
        drop(listener);
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"someone else's").unwrap();
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), b"someone else's");
        fs::remove_file(&path).unwrap();
    }
}
