//! Hints for moving large files: a received file's writeback started
//! early, so that the `fsync` that makes it durable has little left to
//! wait for, or direct I/O, which skips the page cache altogether (and
//! whether a file is in that cache at all).

use std::fs::File;
use std::io;

/// What direct I/O wants buffers, file offsets and lengths aligned to: a
/// page, a multiple of the logical block size of common disks (512 B or
/// 4 KiB).
pub(crate) const DIRECT_IO_ALIGN: usize = 4096;

/// Asks the kernel to start writing `len` bytes of `file` from `offset`
/// to the disk now, without waiting for them (Linux `sync_file_range`
/// with `SYNC_FILE_RANGE_WRITE`). A hint: elsewhere, or when the file
/// system does not support it, nothing happens, and the final `fsync`
/// does all the work as before.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else {
            return;
        };
        // SAFETY: `file` is an open descriptor for the duration of the
        // call; sync_file_range reads no memory of ours.
        let done =
            unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        if done != 0 {
            log::debug!("sync_file_range: {}", std::io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (file, offset, len);
}

/// Turns direct I/O on or off for `file` (Linux `O_DIRECT`): writes then
/// go from the caller's buffer to the disk, with no copy into the page
/// cache, but only from buffers, at offsets and in lengths aligned to
/// [`DIRECT_IO_ALIGN`] (else `InvalidInput`). An error where the system
/// or the file system does not support it (tmpfs before Linux 6.6, say).
pub(crate) fn set_direct_io(file: &File, on: bool) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor open for the duration of the call;
        // no memory of ours is passed.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let wanted = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (file, on);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "direct I/O is used on Linux only",
        ))
    }
}

/// Whether the byte of `file` at `offset` is in the page cache, as far as
/// the system tells (Linux: a one-byte read with `RWF_NOWAIT`, which fails
/// rather than wait for the disk). True where it cannot tell, so that the
/// caller keeps reading through the cache.
pub(crate) fn is_cached(file: &File, offset: u64) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::fd::AsRawFd;
        let Ok(offset) = libc::off_t::try_from(offset) else {
            return true;
        };
        let mut byte = 0u8;
        let iov = libc::iovec {
            iov_base: (&raw mut byte).cast(),
            iov_len: 1,
        };
        // SAFETY: one iovec over a local byte that outlives the call; the
        // descriptor is open for its duration.
        let read = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        read >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (file, offset);
        true
    }
}
