//! The TLS tools run for real: the load generator's `--tls` against the
//! tokio-rustls bench fixture, counting full and resumed handshakes, and
//! against its in-process server serving TLS with a certificate made at
//! start (both modes); gen_tls_cert's files serve a TLS server;
//! bench_server's `tokio-tls` kind needs its certificate.

#[path = "util/tls.rs"]
mod pki;
#[path = "../benches/fixtures/tokio_tls.rs"]
mod tokio_tls;
mod util;

use std::net::SocketAddr;

use pki::TestPki;
use serde_json::Value;
use util::loadgen::failures;

/// Runs loadgen with `--tls` against `addr` and returns its JSON report.
fn loadgen_tls(addr: SocketAddr, ca: &str, mode: &str, extra: &[&str]) -> Value {
    let target = addr.to_string();
    loadgen_json(
        mode,
        &[&["--target", &target, "--tls-ca", ca][..], extra].concat(),
    )
}

/// Runs a short loadgen with `--tls` and `args` and returns its JSON
/// report.
fn loadgen_json(mode: &str, args: &[&str]) -> Value {
    let fixed = [
        mode,
        "--tls",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--connections",
        "4",
        "--json",
    ];
    let args = [&fixed[..], args].concat();
    let output = util::run_example("loadgen", &args);
    let report: Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {output:?}"));
    // A run in which every request failed fails; any other succeeds.
    let all_failed = report["ops"] == 0 && report["errors"].as_u64().unwrap_or(0) > 0;
    let expected = if all_failed { 1 } else { 0 };
    assert_eq!(output.status.code(), Some(expected), "{mode}: {output:?}");
    report
}

fn count(report: &Value, key: &str) -> u64 {
    report["tls"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("no tls.{key}: {report}"))
}

#[test]
fn loadgen_speaks_tls_and_counts_full_and_resumed_handshakes() {
    util::init_logging();
    let pki = TestPki::generate();
    let server = tokio_tls::tls_echo("127.0.0.1:0".parse().unwrap(), pki.server_config()).unwrap();
    let ca = pki.path("ca.pem");
    let ca = ca.to_str().unwrap();

    let tcp = loadgen_tls(server.addr, ca, "tcp", &[]);
    assert!(tcp["ops"].as_u64().unwrap() > 0, "{tcp}");
    assert_eq!(failures(&tcp), 0, "{tcp}");

    let resumed = loadgen_tls(server.addr, ca, "churn", &[]);
    assert!(resumed["ops"].as_u64().unwrap() > 0, "{resumed}");
    assert_eq!(failures(&resumed), 0, "{resumed}");
    assert_eq!(resumed["tls"]["resumption"], true);
    assert!(count(&resumed, "resumed_handshakes") > 0, "{resumed}");
    assert_eq!(
        count(&resumed, "full_handshakes") + count(&resumed, "resumed_handshakes"),
        resumed["ops"].as_u64().unwrap(),
        "one handshake per churned connection: {resumed}"
    );

    let full = loadgen_tls(server.addr, ca, "churn", &["--no-resume"]);
    assert_eq!(failures(&full), 0, "{full}");
    assert_eq!(count(&full, "resumed_handshakes"), 0, "{full}");
    assert_eq!(
        count(&full, "full_handshakes"),
        full["ops"].as_u64().unwrap(),
        "{full}"
    );
    server.stop();
}

#[test]
fn loadgen_refuses_a_server_its_ca_did_not_sign() {
    let pki = TestPki::generate();
    let server = tokio_tls::tls_echo("127.0.0.1:0".parse().unwrap(), pki.server_config()).unwrap();
    let report = loadgen_tls(
        server.addr,
        pki.path("untrusted-ca.pem").to_str().unwrap(),
        "churn",
        &[],
    );
    assert_eq!(report["ops"], 0, "{report}");
    assert!(report["errors"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["last_error"].as_str().unwrap().contains("UnknownIssuer"),
        "{report}"
    );
    server.stop();
}

#[test]
fn loadgen_tls_options_are_checked() {
    let pki = TestPki::generate();
    let ca = pki.path("ca.pem");
    let ca = ca.to_str().unwrap();
    for (args, says) in [
        (
            &["udp", "--tls", "--tls-ca", ca, "--target", "127.0.0.1:9"][..],
            "tcp and churn",
        ),
        (&["tcp", "--tls", "--tls-ca", ca][..], "--target"),
        (&["tcp", "--tls", "--target", "127.0.0.1:9"][..], "--tls-ca"),
        (
            &[
                "tcp",
                "--tls",
                "--tls-ca",
                "/nonexistent/ca.pem",
                "--target",
                "127.0.0.1:9",
            ][..],
            "/nonexistent/ca.pem",
        ),
    ] {
        let output = util::run_example("loadgen", args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn gen_tls_cert_writes_files_a_server_can_use_and_keeps_existing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = util::run_example("gen_tls_cert", &["--out-dir", out]);
    assert!(output.status.success(), "{output:?}");
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let config = tokio_tls::config_from_pem(&cert, &key).unwrap();
    let server = tokio_tls::tls_echo("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let report = loadgen_tls(server.addr, &format!("{out}/ca.pem"), "churn", &[]);
    assert!(report["ops"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(failures(&report), 0, "{report}");
    server.stop();

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");

    let again = util::run_example("gen_tls_cert", &["--out-dir", out]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(
        util::run_example("gen_tls_cert", &["--out-dir", out, "--force"])
            .status
            .success()
    );
}

#[test]
fn gen_tls_cert_refuses_a_name_no_client_can_ask_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tls");
    let output = util::run_example(
        "gen_tls_cert",
        &["--out-dir", out.to_str().unwrap(), "--name", "bad name!"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--name: \"bad name!\" cannot be a TLS server name"),
        "{output:?}"
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn bench_server_tokio_tls_needs_its_certificate() {
    let output = util::run_example("bench_server", &["--kind", "tokio-tls"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-cert"));
}

#[test]
fn loadgen_tls_without_a_target_serves_tls_in_process_in_both_modes() {
    for parked in [&[][..], &["--parked"]] {
        let tcp = loadgen_json("tcp", parked);
        assert!(tcp["ops"].as_u64().unwrap() > 0, "{tcp}");
        assert_eq!(failures(&tcp), 0, "{tcp}");
        assert!(tcp["server"].as_str().unwrap().starts_with("in-process"), "{tcp}");

        let churn = loadgen_json("churn", parked);
        assert!(churn["ops"].as_u64().unwrap() > 0, "{churn}");
        assert_eq!(failures(&churn), 0, "{churn}");
        assert!(count(&churn, "resumed_handshakes") > 0, "{churn}");
        // The clients end with close_notify: the server saw no errors.
        assert_eq!(churn["server_stats"]["errors"], 0, "{churn}");
        assert_eq!(churn["server_stats"]["tls_handshake_failures"], 0, "{churn}");
    }
}
