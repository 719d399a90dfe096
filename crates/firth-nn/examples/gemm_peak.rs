//! Measures single-precision GEMM throughput (GFLOP/s) on this machine: a large square product
//! (the machine's practical sgemm peak) and the shapes of firth's LSTM language models.
//!
//! cargo run --release -p firth-nn --example gemm_peak -- [THREADS]

use firth_nn::gemm::{gemm, Op, Out};
use std::time::Instant;

fn rate(m: usize, n: usize, k: usize, ta: bool, tb: bool) -> f64 {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let flops = 2.0 * (m * n * k) as f64;
    let reps = ((4e9 / flops) as usize).clamp(3, 2000);
    gemm(
        &mut c,
        Out::Set,
        &a,
        if ta { Op::T } else { Op::N },
        &b,
        if tb { Op::T } else { Op::N },
        m,
        n,
        k,
    );
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            gemm(
                &mut c,
                Out::Add,
                &a,
                if ta { Op::T } else { Op::N },
                &b,
                if tb { Op::T } else { Op::N },
                m,
                n,
                k,
            );
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    flops / best / 1e9
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    println!("threads {threads}");
    println!(
        "sgemm_peak_gflops {:.1}",
        rate(2048, 2048, 2048, false, false)
    );
    for &(m, k, n, name) in &[
        (400, 200, 10000, "softmax 400x200x10000"),
        (20, 200, 800, "lstm step 20x200x800"),
        (400, 200, 800, "lstm input 400x200x800"),
    ] {
        println!(
            "{name}: NN {:.1}  NT {:.1}  TN {:.1}",
            rate(m, n, k, false, false),
            rate(m, n, k, false, true),
            rate(m, n, k, true, false)
        );
    }
}
