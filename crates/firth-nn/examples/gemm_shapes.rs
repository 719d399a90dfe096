//! GFLOP/s of given GEMM shapes on one thread, through faer and through the few-row kernel
//! (at any row count; the library takes it up to `few_rows::MAX_ROWS`): arguments `m,n,k,ta,tb`.
//!
//! cargo run --release -p firth-nn --example gemm_shapes -- 42,2048,768,N,N 42,768,2048,N,T

use firth_nn::few_rows;
use firth_nn::gemm::{gemm, Op, Out};
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
        let num = |i: usize| -> usize { p[i].parse().expect("m,n,k,ta,tb") };
        let (m, n, k) = (num(0), num(1), num(2));
        let op = |s: &str| if s == "T" { Op::T } else { Op::N };
        let (ta, tb) = (op(p[3]), op(p[4]));
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let plain = time(|| gemm(&mut c, Out::Set, &a, ta, &b, tb, m, n, k), flops);
        let line = if ta == Op::N && few_rows::available() {
            let mut packed = Vec::new();
            few_rows::pack(&b, k, n, tb == Op::T, &mut packed);
            let pk = time(
                || few_rows::gemm_packed(&mut c, &a, &packed, m, n, k, false),
                flops,
            );
            format!("{plain:.1} GFLOP/s, few-row packed {pk:.1}")
        } else {
            format!("{plain:.1} GFLOP/s")
        };
        println!("{arg}: {line}");
    }
}
