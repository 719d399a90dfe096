//! GFLOP/s of given GEMM shapes, one thread: `m,n,k,ta,tb` arguments, e.g. `42,2048,768,N,N`.
//!
//! cargo run --release -p firth-nn --example gemm_shapes -- 42,2048,768,N,N 42,768,2048,N,T

use firth_nn::few_rows;
use firth_nn::gemm::{gemm, gemm_packed, pack_rhs, Op, Out};
use std::time::Instant;

fn time(mut f: impl FnMut(), flops: f64) -> f64 {
    f();
    let reps = ((2e9 / flops) as usize).clamp(3, 5000);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    flops / best / 1e9
}

fn main() {
    firth_nn::par::set_global_threads(1).unwrap();
    for arg in std::env::args().skip(1) {
        let p: Vec<&str> = arg.split(',').collect();
        let (m, n, k): (usize, usize, usize) = (
            p[0].parse().unwrap(),
            p[1].parse().unwrap(),
            p[2].parse().unwrap(),
        );
        let op = |s: &str| if s == "T" { Op::T } else { Op::N };
        let (ta, tb) = (op(p[3]), op(p[4]));
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let plain = time(|| gemm(&mut c, Out::Set, &a, ta, &b, tb, m, n, k), flops);
        let mut packed = Vec::new();
        let line = if ta == Op::N
            && m <= few_rows::MAX_ROWS
            && pack_rhs(&b, tb, k, n, m, 100, &mut packed)
        {
            let pk = time(
                || gemm_packed(&mut c, Out::Set, &a, &packed, m, n, k),
                flops,
            );
            format!("{plain:.1} GFLOP/s, packed {pk:.1}")
        } else {
            format!("{plain:.1} GFLOP/s")
        };
        println!("{arg}: {line}");
    }
}
