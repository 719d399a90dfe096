//! How long the server's nearest-neighbour pass takes for batches of several sizes, f32 product
//! against the scan the server runs (the 8-bit copy where the CPU has VNNI), on a vector file
//! or on random vectors of a given shape:
//!
//!   cargo run --release -p firth-serve --example nearest_speed -- VECTORS.bin
//!   cargo run --release -p firth-serve --example nearest_speed -- 50000 100
//!
//! Queries are the file's own rows, spread over the whole file (rare words too, as the load
//! test draws them), each leaving itself out, k = 10.

use firth_serve::nearest::{answer_f32, Query, Scan};
use firth_vectors::embeddings::Embeddings;
use std::sync::Arc;
use std::time::Instant;

fn random(n: usize, d: usize) -> Embeddings {
    let mut x = 1u64;
    let data: Vec<f32> = (0..n * d)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    Embeddings::new((0..n).map(|i| format!("w{i}")).collect(), d, data)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let e = match args.as_slice() {
        [path] => firth_vectors::formats::load(std::path::Path::new(path))?,
        [n, d] => random(n.parse()?, d.parse()?),
        _ => random(50_000, 100),
    };
    let (n, d) = (e.len(), e.dim);
    let norm = e.normed().to_vec();
    let e = Arc::new(e);
    let scan = Scan::new(e.clone());
    println!("{n} rows x {d}; 8-bit copy in use: {}", scan.quantized());
    for &b in &[1usize, 8, 32, 64, 128, 256] {
        let batch: Vec<Query> = (0..b)
            .map(|i| {
                let row = (i * 7919 + 13) % n;
                Query {
                    q: norm[row * d..(row + 1) * d].to_vec(),
                    k: 10,
                    exclude: vec![row],
                    reply: tokio::sync::oneshot::channel().0,
                }
            })
            .collect();
        let reps = (512 / b).max(3);
        let t = Instant::now();
        for _ in 0..reps {
            firth_nn::par::sequential(|| answer_f32(&e, &batch));
        }
        let f = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            firth_nn::par::sequential(|| scan.answer(&batch));
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "batch {b:>3}: f32 {:.3} ms per query ({:.1} GFLOP/s); server's scan {:.3} ms per query ({:.2}x)",
            f * 1e3 / b as f64,
            2.0 * (n * d * b) as f64 / f / 1e9,
            s * 1e3 / b as f64,
            f / s
        );
    }
    Ok(())
}
