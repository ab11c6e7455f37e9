//! SHA-256 throughput, the ceiling of a checked file transfer: each end
//! hashes every byte once.
//!
//! The `sha2` crate picks its backend at run time (through `cpufeatures`):
//! the x86 SHA extensions (`sha_ni` in /proc/cpuinfo) when the CPU has
//! them, else portable code. This bench says which one ran and how fast
//! it is, over 64 KiB and 1 MiB buffers (the file transfer's).
//!
//! ```text
//! cargo bench --features message --bench sha256
//! # the portable code, for comparison:
//! RUSTFLAGS='--cfg sha2_backend="soft"' cargo bench --features message --bench sha256
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

fn sha256(c: &mut Criterion) {
    let has_sha_ni = std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| info.split_whitespace().any(|flag| flag == "sha_ni"))
        .unwrap_or(false);
    println!(
        "this CPU {} the SHA extensions (sha_ni); sha2 uses them when it has them, unless built with --cfg sha2_backend=\"soft\"",
        if has_sha_ni { "has" } else { "does not have" }
    );
    let mut group = c.benchmark_group("sha256");
    group.measurement_time(Duration::from_secs(3));
    for size in [64 * 1024, 1024 * 1024] {
        let buffer = vec![0x5au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &buffer, |b, buffer| {
            b.iter(|| Sha256::digest(black_box(buffer)))
        });
    }
    group.finish();
}

criterion_group!(benches, sha256);
criterion_main!(benches);
