//! Starting a file's writeback early, so that the `fsync` that makes a
//! received file durable has little left to wait for.

use std::fs::File;

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
