//! The manual: how to build servers with this crate, chapter by chapter.
//!
//! The [crate's front page](crate) shows a server in one handler; the
//! items' own pages say what each does. The chapters here are the path
//! between the two: what to write, which server to pick, how to put it in
//! production and how to measure it. Every code block is a doc test
//! (`cargo test --doc --all-features` runs them), so what they show is
//! what the crate does.
//!
//! | chapter | what it covers |
//! |---|---|
//! | [The handler and its lifecycle](_01_handler) | the two handler styles, the hooks and their order, errors and panics, serving and stopping, options |
//! | [The three modes, and how to choose](_02_modes) | serial, threading and parked; the one-word switch; overload, timeouts; the protocol servers built on the parked mode |
//! | [Datagram and Unix servers](_03_datagram_and_unix) | UDP, Unix-domain streams and datagrams; the chat room |
//! | [Framing and sticky packets](_04_framing) | why TCP merges and splits messages, and length-prefixed frames |
//! | [Messages and file transfer](_05_messages) | a JSON header and a streamed body; files with checksums; `file_server` (feature `message`) |
//! | [Client verification](_06_client_verification) | an HMAC challenge before any handler runs; the remote shell (feature `auth`) |
//! | [TLS](_07_tls) | certificates, mutual TLS, what a handler learns, trying it by hand (feature `tls`) |
//! | [The PROXY protocol and load balancers](_08_proxy_protocol) | the real client's address behind HAProxy or nginx (feature `proxy-protocol`) |
//! | [Running in production](_09_production) | systemd, socket activation, restarts without dropping a connection, several processes, `deploy/` (features `systemd`, `restart`) |
//! | [Performance, and how to measure it](_10_performance) | the load generator, `scripts/bench-compare.sh` and the other scripts: how to run them and read them |
//! | [Coming from Python's socketserver](_11_from_python) | a Python handler and its Rust twin, side by side; the tutorials' programs and the examples that answer them |
//!
//! Chapters whose examples need a feature are doc-tested when it is on
//! (`--all-features` turns them all on); the other chapters need none.
//!
//! # The examples
//!
//! Seven small programs to copy, one idea each, at most 80 lines, in
//! `examples/echo_*.rs` (`cargo run --example echo_threading`, and so on:
//! the README's "Examples to copy" lists them); the full-featured tools
//! (`uppercase_tcp_server`, `file_server`, `chat_server`,
//! `remote_shell_server`, `kv_server`, `http_server`, `loadgen`, ...) are
//! described in the chapter each belongs to. Every example takes `--help`
//! (the seven small ones print their usage on a wrong argument) and has a
//! test in `tests/` that runs it as a child process and talks to it.
//!
//! # Where things are
//!
//! ```text
//! src/lib.rs, src/manual/   the crate's front page; this manual (a Markdown file per chapter)
//! src/handler/              RequestHandler, KeepAliveHandler, Wrap: what a user writes
//! src/request/              StreamRequest, DatagramRequest: what a handler receives
//! src/server/               the serving skeleton (core.rs), the builder, the stream engine
//!                           (stream/, parked/ for the parked mode), the datagram engine
//! src/pool/, src/control/   worker threads and their queue; shutdown, stats, force-close
//! src/socket/, src/sys/     sockets through socket2; the only unsafe code (mio, recv, fds)
//! src/framing.rs, src/message/, src/auth.rs, src/tls/, src/proxy_protocol/,
//! src/systemd/, src/restart/   one module per feature
//! src/echo.rs               the uppercase echo handlers the examples, tests and benches share
//! examples/                 echo_*.rs to copy; the tools; common/ (what the tools share)
//! tests/                    CPython's socketserver tests ported, every example end to end,
//!                           interoperability with Python, OpenSSL, HAProxy, redis, curl
//! benches/, scripts/        criterion benches and baselines; load and comparison scripts
//! deploy/                   systemd units, HAProxy configurations
//! fuzz/                     cargo-fuzz targets, outside the main build
//! ```
//!
//! # Fuzzing
//!
//! The frame decoder, the message-header decoder, the PROXY header parser
//! and the protocol examples' parsers (kv_server's RESP commands,
//! http_server's request heads and chunked bodies) have
//! [cargo-fuzz](https://github.com/rust-fuzz/cargo-fuzz) targets in
//! `fuzz/`, a crate outside the main build. cargo-fuzz needs nightly
//! features; `RUSTC_BOOTSTRAP=1` enables them on a stable toolchain:
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz
//! RUSTC_BOOTSTRAP=1 cargo fuzz run frame_decoder -- -max_total_time=300
//! RUSTC_BOOTSTRAP=1 cargo fuzz run header_decoder -- -max_total_time=300
//! RUSTC_BOOTSTRAP=1 cargo fuzz run proxy_header -- -max_total_time=300
//! RUSTC_BOOTSTRAP=1 cargo fuzz run resp_parser -- -max_total_time=600
//! RUSTC_BOOTSTRAP=1 cargo fuzz run http_request -- -max_total_time=600
//! ```
//!
//! `resp_parser` feeds the parser whole and in pieces, as the server does,
//! and wants the same commands both ways, none beyond the limits;
//! `http_request` parses heads back to back, skipping each body by its
//! framing, and feeds the chunked decoder whole and in pieces. A
//! 10-minute run of each (2026-12-07) found no crash and no failed check,
//! nor did a minute of each with `-malloc_limit_mb=16` find an allocation
//! over 16 MB.

/// Declares a chapter: a module with no items, whose page is the Markdown
/// file. A chapter whose examples need features is doc-tested only with
/// them (`cfg(doctest)` is set while rustdoc collects the tests); its text
/// is always there for `cargo doc`, where its links to those features'
/// items stay plain text when they are off.
macro_rules! chapter {
    ($name:ident = $file:literal) => {
        #[doc = include_str!($file)]
        pub mod $name {}
    };
    ($name:ident = $file:literal, needs $($feature:literal),+) => {
        #[cfg_attr(any(all($(feature = $feature),+), not(doctest)), doc = include_str!($file))]
        #[cfg_attr(
            all(doctest, not(all($(feature = $feature),+))),
            doc = concat!("(Its examples need the features:", $(" ", $feature),+, ".)")
        )]
        #[cfg_attr(not(all($(feature = $feature),+)), allow(rustdoc::broken_intra_doc_links))]
        pub mod $name {}
    };
}

chapter!(_01_handler = "01_handler.md");
chapter!(_02_modes = "02_modes.md");
chapter!(_03_datagram_and_unix = "03_datagram_and_unix.md");
chapter!(_04_framing = "04_framing.md");
chapter!(_05_messages = "05_messages.md", needs "message");
chapter!(_06_client_verification = "06_client_verification.md", needs "auth");
chapter!(_07_tls = "07_tls.md", needs "tls");
chapter!(_08_proxy_protocol = "08_proxy_protocol.md", needs "proxy-protocol");
chapter!(_09_production = "09_production.md", needs "systemd", "restart");
chapter!(_10_performance = "10_performance.md");
chapter!(_11_from_python = "11_from_python.md");
