//! The crate's page on docs.rs: built with every feature, and every public
//! item a feature adds marked with it (`doc(cfg)`), so a reader sees which
//! feature to turn on. A source scan: a public item gated by
//! `#[cfg(feature ...)]` must carry the same condition in
//! `#[cfg_attr(docsrs, doc(cfg(...)))]`. The page itself is built by
//! `.ci/run` (`RUSTDOCFLAGS="--cfg docsrs" RUSTC_BOOTSTRAP=1 cargo doc`).

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `feature = "tls"` out of `#[cfg(feature = "tls")]`, for one-line cfgs
/// that name a feature.
fn feature_condition(line: &str) -> Option<&str> {
    let inner = line.trim().strip_prefix("#[cfg(")?.strip_suffix(")]")?;
    inner.contains("feature").then_some(inner)
}

/// Public items behind a feature without the mark, as `file:line item`.
fn unmarked_items() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut unmarked = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let Some(condition) = feature_condition(line) else {
                continue;
            };
            // The attributes after the cfg, then the item they belong to.
            let rest = &lines[n + 1..];
            let attributes = rest.iter().take_while(|l| l.trim_start().starts_with("#["));
            let mark = format!("#[cfg_attr(docsrs, doc(cfg({condition})))]");
            let marked = attributes.clone().any(|l| l.trim() == mark);
            let item = rest[attributes.count()].trim();
            if item.starts_with("pub ") && !marked {
                unmarked.push(format!("{}:{} {item}", file.display(), n + 1));
            }
        }
    }
    unmarked
}

#[test]
fn every_public_item_behind_a_feature_says_which() {
    let unmarked = unmarked_items();
    assert!(
        unmarked.is_empty(),
        "public items behind a feature without #[cfg_attr(docsrs, doc(cfg(...)))]:\n{}",
        unmarked.join("\n")
    );
}

#[test]
fn docs_rs_builds_with_every_feature_and_marks_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let metadata = manifest
        .split("[package.metadata.docs.rs]")
        .nth(1)
        .expect("Cargo.toml has [package.metadata.docs.rs]");
    let metadata = metadata.split("\n[").next().unwrap();
    assert!(metadata.contains("all-features = true"), "{metadata}");
    assert!(
        metadata.contains(r#"rustdoc-args = ["--cfg", "docsrs"]"#),
        "{metadata}"
    );
    let lib = fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#![cfg_attr(docsrs, feature(doc_cfg))]"));
}
