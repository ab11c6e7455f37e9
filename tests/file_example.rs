//! The file server and client examples, end to end: real binaries, real
//! sockets, a 200 MB file.
#![cfg(all(feature = "message", target_os = "linux"))]

mod util;

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use util::{Process, eventually};

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
    let down = succeeded(&client(port, &["get", "big.bin", "--out", downloads.to_str().unwrap()]).finish());
    let sent_hash = up.split("sha256 ").nth(1).unwrap().trim_end_matches([')', '\n']);
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
