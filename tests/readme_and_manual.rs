//! The way in stays short and whole: the README fits a first read (at most
//! 300 lines), every chapter of the manual (a Markdown file in
//! src/manual/) is part of the crate's documentation, and the README, the
//! front page and the manual's table of contents all lead to every
//! chapter. A source scan, like tests/docs_rs.rs: rustdoc itself checks
//! the links (`.ci/run` builds the docs with warnings denied) and runs
//! every chapter's code (`cargo test --doc --all-features`).

use std::fs;
use std::path::{Path, PathBuf};

/// The most lines the README may have.
const README_MAX_LINES: usize = 300;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    let path = root().join(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The chapters' Markdown files, sorted: `01_handler.md`, ...
fn chapter_files() -> Vec<String> {
    let dir: PathBuf = root().join("src/manual");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .collect();
    files.sort();
    files
}

/// `_01_handler` for `01_handler.md`: the chapter's module.
fn module(file: &str) -> String {
    format!("_{}", file.trim_end_matches(".md"))
}

#[test]
fn the_readme_has_at_most_300_lines() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the detail into a manual chapter"
    );
}

#[test]
fn every_chapter_file_is_a_chapter_of_the_manual() {
    let manual = read("src/manual/mod.rs");
    let files = chapter_files();
    assert!(files.len() >= 11, "{files:?}");
    for file in &files {
        let declaration = format!("chapter!({} = \"{file}\"", module(file));
        assert!(
            manual.contains(&declaration),
            "src/manual/{file} is not included by src/manual/mod.rs (expected `{declaration}`)"
        );
    }
    // And no chapter names a file that is not there.
    let declared = manual.matches("chapter!(_").count();
    assert_eq!(declared, files.len(), "chapters declared in src/manual/mod.rs");
}

#[test]
fn the_readme_the_front_page_and_the_manual_lead_to_every_chapter() {
    let readme = read("README.md");
    let lib = read("src/lib.rs");
    let manual = read("src/manual/mod.rs");
    for file in chapter_files() {
        let module = module(&file);
        assert!(
            readme.contains(&format!("/manual/{module}/index.html")),
            "README.md does not link the chapter {module}"
        );
        assert!(
            lib.contains(&format!("(manual::{module})")),
            "src/lib.rs does not link the chapter {module}"
        );
        assert!(
            manual.contains(&format!("]({module})")),
            "the manual's table of contents does not list {module}"
        );
    }
}

#[test]
fn the_readme_keeps_its_two_commands_and_points_to_the_full_performance_report() {
    let readme = read("README.md");
    // .ci/run checks the test command; the main job is the other one.
    for command in [
        "cargo run --release --example loadgen\n",
        "cargo test --all-features\n",
    ] {
        assert!(readme.contains(command), "README.md lost `{}`", command.trim());
    }
    assert!(readme.contains("[PERFORMANCE.md](PERFORMANCE.md)"));
    let report = read("PERFORMANCE.md");
    assert!(report.contains("<!-- bench-compare:begin -->") && report.contains("<!-- bench-compare:end -->"));
    let chapter = read("src/manual/10_performance.md");
    assert!(
        chapter.contains("`PERFORMANCE.md`") && chapter.contains("written by\n`scripts/bench-compare.sh`")
    );
}
