//! The file server and client examples, end to end: real binaries, real
//! sockets, a 200 MB file.
#![cfg(all(feature = "message", target_os = "linux"))]

mod util;

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;
use socketserver::message::file::{PartialFile, is_partial_file_name};
use socketserver::message::{MessageConfig, write_message_bytes};
use util::{Process, TIMEOUT, eventually};

const MB: usize = 1024 * 1024;

/// Writes `megabytes` of varied bytes (a xorshift stream) to `path`.
fn make_file(path: &Path, megabytes: usize, seed: u64) {
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut state = seed | 1;
    let mut block = vec![0u8; MB];
    for _ in 0..megabytes {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
}

fn same_contents(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (File::open(a).unwrap(), File::open(b).unwrap());
    let (mut x, mut y) = (vec![0u8; MB], vec![0u8; MB]);
    loop {
        let n = a.read(&mut x).unwrap();
        if b.read_exact(&mut y[..n]).is_err() {
            return false;
        }
        if n == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
        if x[..n] != y[..n] {
            return false;
        }
    }
}

fn client(port: u16, args: &[&str]) -> Process {
    Process::spawn(
        Command::new(util::example_binary("file_client"))
            .args(["--port", &port.to_string(), "--quiet"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
}

fn succeeded(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The server's peak resident memory, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn files_travel_whole_in_flat_memory_and_interrupted_uploads_leave_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (store, sources, downloads) = (
        root.path().join("store"),
        root.path().join("src"),
        root.path().join("out"),
    );
    fs::create_dir(&sources).unwrap();
    fs::create_dir(&downloads).unwrap();
    let big = sources.join("big.bin");
    let other = sources.join("other.bin");
    make_file(&big, 200, 1);
    make_file(&other, 50, 2);

    let store_arg = store.to_str().unwrap();
    let (mut server, addr, _lines) =
        util::start_example_server("file_server", &["--dir", store_arg, "--grace", "200ms"]);
    let port = addr.port();
    let server_pid = server.child().id();

    // 200 MB up while another client uploads, then back down.
    let up = client(port, &["put", big.to_str().unwrap()]);
    let alongside = client(port, &["put", other.to_str().unwrap(), "--name", "other.bin"]);
    let up = succeeded(&up.finish());
    assert!(up.starts_with("stored big.bin (209715200 bytes, sha256 "), "{up}");
    succeeded(&alongside.finish());
    // What a download killed by a signal leaves: the next one removes it.
    let left_over = downloads.join(".big.bin.99999-0.socketserver-part");
    fs::write(&left_over, b"half a file").unwrap();
    let down = succeeded(&client(port, &["get", "big.bin", "--out", downloads.to_str().unwrap()]).finish());
    assert!(
        !left_over.exists(),
        "the interrupted download's partial file is still there"
    );
    let sent_hash = up.split("sha256 ").nth(1).unwrap().split(')').next().unwrap();
    assert_eq!(sent_hash.len(), 64, "{up}");
    assert!(up.trim_end().ends_with(" MB/s"), "{up}");
    assert!(
        down.contains(sent_hash),
        "the download's checksum differs: {down} vs {up}"
    );
    assert!(same_contents(&big, &downloads.join("big.bin")));
    assert!(same_contents(&other, &store.join("other.bin")));
    let listing = succeeded(&client(port, &["list"]).finish());
    assert_eq!(
        listing,
        format!("{:>12}  big.bin\n{:>12}  other.bin\n", 200 * MB, 50 * MB)
    );

    // Files stream through small buffers: memory stays flat.
    let peak = peak_rss_kib(server_pid);
    assert!(peak < 50 * 1024, "the server's peak RSS was {peak} KiB");

    // A missing file gets a clear error.
    let missing = client(port, &["get", "nope.bin", "--out", downloads.to_str().unwrap()]).finish();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file: nope.bin"));

    // A client killed in the middle of an upload leaves no file behind.
    let mut doomed = client(port, &["put", big.to_str().unwrap(), "--name", "doomed.bin"]);
    let partial = |dir: &Path| {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".doomed.bin."))
            .count()
    };
    eventually("the upload has started", || partial(&store) > 0);
    doomed.signal(libc::SIGKILL);
    let _ = doomed.finish();
    eventually("the partial upload is removed", || partial(&store) == 0);
    assert!(!store.join("doomed.bin").exists(), "a killed upload was kept");

    server.signal(libc::SIGTERM);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
}

/// The partial files (uploads in progress or left over) in `dir`.
fn partial_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| is_partial_file_name(n))
        .collect()
}

fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn start_server(store: &Path, extra: &[&str]) -> (Process, SocketAddr) {
    let mut args = vec!["--dir", store.to_str().unwrap(), "--grace", "100ms"];
    args.extend_from_slice(extra);
    let (server, addr, _lines) = util::start_example_server("file_server", &args);
    (server, addr)
}

fn stop(mut server: Process) {
    server.signal(libc::SIGTERM);
    let output = server.finish();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn an_upload_cut_by_killing_the_server_is_never_served_and_removed_at_restart() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let big = root.path().join("big.bin");
    make_file(&big, 200, 3);
    let (mut server, addr) = start_server(&store, &[]);
    let upload = client(addr.port(), &["put", big.to_str().unwrap()]);
    eventually("the upload has started", || !partial_files(&store).is_empty());
    server.signal(libc::SIGKILL);
    let _ = server.finish();
    let _ = upload.finish();
    let left = partial_files(&store);
    assert_eq!(left.len(), 1, "{left:?}");

    // A partial file being written (here, by this test) is left alone at
    // start, and is never listed or served either.
    let mut live = PartialFile::create(&store, "live.bin").unwrap();
    live.write_all(b"in progress").unwrap();
    let live_name = live.path().file_name().unwrap().to_str().unwrap().to_owned();

    let (server, addr) = start_server(&store, &[]);
    assert_eq!(
        partial_files(&store),
        vec![live_name.clone()],
        "the leftover was kept"
    );
    let listing = succeeded(&client(addr.port(), &["list"]).finish());
    assert_eq!(listing, "");
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    for name in [&left[0], &live_name] {
        let said = failed(&client(addr.port(), &["get", name, "--out", out.to_str().unwrap()]).finish());
        assert!(said.contains("no such file"), "{said}");
    }
    drop(live);
    stop(server);
}

#[test]
fn a_stalled_upload_is_cut_off_after_the_idle_timeout() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let (server, addr) = start_server(&store, &["--idle-timeout", "300ms"]);
    let mut stalled = util::connect(addr);
    let header = json!({
        "op": "put",
        "name": "stalled.bin",
        "sha256": "0".repeat(64),
    });
    // A header promising a megabyte, then ten bytes, then nothing.
    let mut wire = Vec::new();
    write_message_bytes(
        &mut wire,
        &header,
        &vec![b'x'; 1_000_000],
        &MessageConfig::default(),
    )
    .unwrap();
    let cut = wire.len() - 1_000_000 + 10;
    stalled.write_all(&wire[..cut]).unwrap();
    eventually("the upload has started", || !partial_files(&store).is_empty());
    // The server hangs up on its own, well within the test's bound.
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(started.elapsed() < TIMEOUT, "the connection stayed open");
    eventually("the partial upload is removed", || {
        partial_files(&store).is_empty()
    });
    assert!(!store.join("stalled.bin").exists());
    stop(server);
}

#[test]
fn names_are_consistent_long_ones_fit_and_errors_hide_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let source = root.path().join("source.txt");
    fs::write(&source, b"some words\n").unwrap();
    let out = root.path().join("out");
    fs::create_dir(&out).unwrap();
    let (server, addr) = start_server(&store, &[]);
    let port = addr.port();
    let put = |name: &str| client(port, &["put", source.to_str().unwrap(), "--name", name]).finish();

    // A dot name is refused on upload, as it is hidden from the list.
    let said = failed(&put(".hidden"));
    assert!(said.contains("names starting with '.' are not stored"), "{said}");
    assert!(!store.join(".hidden").exists());

    // A 250-character name fits, with its partial file.
    let long = "n".repeat(250);
    succeeded(&put(&long));
    let listing = succeeded(&client(port, &["list"]).finish());
    assert_eq!(listing, format!("{:>12}  {long}\n", 11));
    succeeded(&client(port, &["get", &long, "--out", out.to_str().unwrap()]).finish());
    assert_eq!(fs::read(out.join(&long)).unwrap(), b"some words\n");

    // A failure on the server's side names the file, not where the
    // server keeps it.
    fs::create_dir(store.join("sub")).unwrap();
    let said = failed(&put("sub"));
    let store_abs = fs::canonicalize(&store).unwrap();
    assert!(said.contains("sub"), "{said}");
    assert!(!said.contains(store_abs.to_str().unwrap()), "{said}");
    stop(server);
}

#[test]
fn client_and_server_errors_name_their_files() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let (server, addr) = start_server(&store, &[]);
    let port = addr.port();
    let source = root.path().join("here.txt");
    fs::write(&source, b"here").unwrap();
    succeeded(&client(port, &["put", source.to_str().unwrap()]).finish());

    // A download into a directory that is not there.
    let missing_dir = root.path().join("no-such-dir");
    let said = failed(&client(port, &["get", "here.txt", "--out", missing_dir.to_str().unwrap()]).finish());
    assert!(
        said.contains(&format!("--out {}: no such directory", missing_dir.display())),
        "{said}"
    );
    assert!(!said.contains("socketserver-part"), "{said}");

    // An upload of a file that is not there.
    let missing_file = root.path().join("missing.bin");
    let said = failed(&client(port, &["put", missing_file.to_str().unwrap()]).finish());
    assert!(said.contains(missing_file.to_str().unwrap()), "{said}");
    stop(server);

    // A --dir that is a file.
    let output = Process::spawn(
        Command::new(util::example_binary("file_server"))
            .args(["--port", "0", "--dir", source.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish();
    let said = failed(&output);
    assert!(
        said.contains(&format!("--dir {}: not a directory", source.display())),
        "{said}"
    );
}

/// Runs `command` in a pseudo-terminal (util-linux `script`), so that
/// the progress bar draws, and returns what it showed.
fn in_terminal(command: &[&str]) -> String {
    let line = command
        .iter()
        .map(|word| format!("'{word}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Process::spawn(
        Command::new("script")
            .args(["--quiet", "--return", "--command", &line, "/dev/null"])
            .env("COLUMNS", "100")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Uploads a file of `megabytes` called `name` with file_client in a
/// terminal (`options` before `put`); what the terminal showed.
fn upload_in_terminal(name: &str, megabytes: usize, options: &[&str]) -> String {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let big: PathBuf = root.path().join(name);
    make_file(&big, megabytes, megabytes as u64);
    let (server, addr) = start_server(&store, &[]);
    let binary = util::example_binary("file_client");
    let port = addr.port().to_string();
    let mut command = vec![binary.to_str().unwrap(), "--port", &port];
    command.extend_from_slice(options);
    command.extend_from_slice(&["put", big.to_str().unwrap()]);
    let shown = in_terminal(&command);
    stop(server);
    shown
}

#[test]
fn the_progress_bar_covers_the_one_pass_upload_and_the_wait_for_the_server() {
    let shown = upload_in_terminal("piped.bin", 100, &[]);
    // No hashing phase: the file is hashed while it is sent.
    assert!(!shown.contains("hashing"), "{shown:?}");
    let rate = shown
        .find("/s")
        .unwrap_or_else(|| panic!("no rate shown: {shown:?}"));
    // Every byte counted (the whole file and the few of the message's
    // header and trailer), then the wait for the server's verdict.
    let waiting = shown
        .find(" sent; the server checks and stores it")
        .unwrap_or_else(|| panic!("no wait shown: {shown:?}"));
    assert!(shown[..waiting].trim_end().ends_with("100.00 MiB"), "{shown:?}");
    let stored = shown.find("stored piped.bin").expect("the upload finished");
    assert!(rate < waiting && waiting < stored, "{shown:?}");
    assert!(shown[stored..].contains(" MB/s"), "{shown:?}");
}

#[test]
fn the_progress_bar_shows_the_hashing_before_a_checksum_first_upload() {
    let shown = upload_in_terminal("hashed.bin", 200, &["--checksum-first"]);
    let hashing = shown
        .find("hashing")
        .unwrap_or_else(|| panic!("no hashing phase shown: {shown:?}"));
    let stored = shown.find("stored hashed.bin").expect("the upload finished");
    assert!(hashing < stored, "{shown:?}");
    // The transfer's own bar comes after the hashing, without the word.
    assert!(shown[hashing..].contains("/s"), "{shown:?}");
}

/// Runs tests/python/file_transfer.py (plain Python, file_server's wire
/// format written from its documentation) with `args`; its output.
fn python_file_transfer(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/file_transfer.py");
    let output = Process::spawn(
        Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .finish();
    succeeded(&output)
}

#[test]
fn python_clients_old_and_new_upload_and_download_in_both_forms() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let source = root.path().join("py.bin");
    make_file(&source, 5, 6);
    let (server, addr) = start_server(&store, &[]);
    let port = addr.port().to_string();
    let source_arg = source.to_str().unwrap();
    for form in ["trailer", "first"] {
        let name = format!("py-{form}.bin");
        let said = python_file_transfer(&["put", &port, source_arg, &name, form]);
        assert_eq!(said.trim().len(), 64, "{said}");
        assert!(same_contents(&source, &store.join(&name)), "{form}");
        // A client asking for the trailer gets one; one that does not
        // (as clients before trailers) gets the checksum first.
        let out = root.path().join(format!("down-{form}.bin"));
        let said = python_file_transfer(&["get", &port, &name, out.to_str().unwrap(), form]);
        assert!(said.trim().ends_with(&format!(" {form}")), "{said}");
        assert!(same_contents(&source, &out), "{form}");
    }
    // The crate's client downloads what Python uploaded checksum-first (it
    // asks for the trailer form; reading the checksum-first form is
    // message::file's unit test files_round_trip_in_both_forms).
    let downloads = root.path().join("out");
    fs::create_dir(&downloads).unwrap();
    let down = succeeded(
        &client(
            addr.port(),
            &["get", "py-first.bin", "--out", downloads.to_str().unwrap()],
        )
        .finish(),
    );
    assert!(down.starts_with("saved "), "{down}");
    assert!(same_contents(&source, &downloads.join("py-first.bin")));
    stop(server);
}
