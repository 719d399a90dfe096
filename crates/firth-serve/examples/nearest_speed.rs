//! How long the batched nearest-neighbour pass takes for batches of several sizes, on random
//! vectors of the given shape: `cargo run --release -p firth-serve --example nearest_speed -- 50000 100`.

use firth_serve::nearest::{answer, Query};
use firth_vectors::embeddings::Embeddings;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (n, d) = (
        args.first().copied().unwrap_or(50_000),
        args.get(1).copied().unwrap_or(100),
    );
    let mut x = 1u64;
    let data: Vec<f32> = (0..n * d)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let e = Embeddings::new((0..n).map(|i| format!("w{i}")).collect(), d, data);
    let norm = e.normed().to_vec();
    for &b in &[1usize, 8, 32, 64, 128, 256] {
        let batch: Vec<Query> = (0..b)
            .map(|i| Query {
                q: norm[i * d..(i + 1) * d].to_vec(),
                k: 10,
                exclude: vec![i],
                reply: tokio::sync::oneshot::channel().0,
            })
            .collect();
        let reps = (512 / b).max(3);
        let t = Instant::now();
        for _ in 0..reps {
            firth_nn::par::sequential(|| answer(&e, &batch));
        }
        let s = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "batch {b:>3}: {:.2} ms per pass, {:.3} ms per query, {:.1} GFLOP/s",
            s * 1e3,
            s * 1e3 / b as f64,
            2.0 * (n * d * b) as f64 / s / 1e9
        );
    }
}
