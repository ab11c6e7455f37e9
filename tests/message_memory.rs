//! Memory a peer's claims can make the receiver reserve: measured with a
//! counting allocator, so this file is a test binary of its own.
#![cfg(feature = "message")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Cursor, ErrorKind};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use socketserver::framing::write_frame;
use socketserver::message::{MessageConfig, MessageStream};

/// Records the largest single allocation.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Issue 15, defect 3: a header claiming a 256 MiB body, followed by 10
/// bytes and the end of the stream, must not make `read_body_to_vec`
/// reserve 256 MiB.
#[test]
fn a_claimed_body_size_reserves_only_what_arrives() {
    let config = MessageConfig::default();
    let mut wire = Vec::new();
    let header = serde_json::to_vec(&json!({"size": 256u64 << 20})).unwrap();
    write_frame(&mut wire, &header, &config.header).unwrap();
    wire.extend_from_slice(b"0123456789");
    let mut messages = MessageStream::with_config(Cursor::new(wire), config);
    messages.read_header().unwrap().unwrap();
    LARGEST.store(0, Ordering::Relaxed);
    let error = messages.read_body_to_vec(1 << 30).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= 128 * 1024,
        "reading 10 bytes of a claimed 256 MiB body allocated {largest} bytes at once"
    );
}
