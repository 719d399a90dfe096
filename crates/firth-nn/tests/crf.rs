//! CRF: gradient check, log-partition and Viterbi against brute force over all tag sequences.

use firth_nn::crf::{logsumexp, Crf};
use firth_nn::gradcheck::{check_input, check_params};
use firth_nn::Rng;

const K: usize = 3;
const L: usize = 4;
const LENGTHS: [usize; 3] = [4, 1, 3];
const B: usize = LENGTHS.len();

fn setup(seed: u64) -> (Crf<f64>, Vec<f64>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let crf = Crf::<f64>::new("crf", K, 1.0, &mut rng);
    let emis: Vec<f64> = (0..L * B * K).map(|_| 3.0 * rng.uniform() - 1.5).collect();
    let gold: Vec<u32> = (0..L * B).map(|_| rng.below(K as u64) as u32).collect();
    (crf, emis, gold)
}

/// Score S(y) of one sequence b of length n.
fn score(crf: &Crf<f64>, emis: &[f64], b: usize, y: &[usize]) -> f64 {
    let n = y.len();
    let mut s = crf.start.value[y[0]] + crf.end.value[y[n - 1]];
    for t in 0..n {
        s += emis[(t * B + b) * K + y[t]];
        if t > 0 {
            s += crf.trans.value[y[t - 1] * K + y[t]];
        }
    }
    s
}

/// All K^n tag sequences of length n.
fn all_sequences(n: usize) -> Vec<Vec<usize>> {
    (0..K.pow(n as u32))
        .map(|mut c| {
            (0..n)
                .map(|_| {
                    let v = c % K;
                    c /= K;
                    v
                })
                .collect()
        })
        .collect()
}

#[test]
fn log_partition_and_viterbi_equal_brute_force() {
    for seed in 0..5 {
        let (mut crf, emis, gold) = setup(seed);
        let nll = crf.forward(&emis, L, B, &LENGTHS, &gold);
        let mut out = vec![0u32; L * B];
        let best = crf.viterbi(&emis, L, B, &LENGTHS, &mut out);
        let mut want_nll = 0.0;
        for (b, &n) in LENGTHS.iter().enumerate() {
            let seqs = all_sequences(n);
            let scores: Vec<f64> = seqs.iter().map(|y| score(&crf, &emis, b, y)).collect();
            let log_z = logsumexp(&scores);
            assert!((crf.log_partition()[b] - log_z).abs() < 1e-10);
            let g: Vec<usize> = (0..n).map(|t| gold[t * B + b] as usize).collect();
            want_nll += log_z - score(&crf, &emis, b, &g);
            let (arg, m) = scores
                .iter()
                .enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |a, (i, &s)| if s > a.1 { (i, s) } else { a },
                );
            assert!((best[b] - m).abs() < 1e-10);
            let got: Vec<usize> = (0..n).map(|t| out[t * B + b] as usize).collect();
            assert_eq!(got, seqs[arg], "seed {seed} sequence {b}");
            for t in n..L {
                assert_eq!(out[t * B + b], 0);
            }
        }
        assert!((nll - want_nll).abs() < 1e-9, "{nll} vs {want_nll}");
    }
}

#[test]
fn gradients_match_finite_differences() {
    let (mut crf, emis, gold) = setup(9);
    let scale = 0.7;
    let (worst, at) = check_params(
        &mut crf,
        |c| {
            let l = c.forward(&emis, L, B, &LENGTHS, &gold);
            let mut d = vec![0.0; emis.len()];
            c.backward(scale, &mut d);
            scale * l
        },
        |c| scale * c.forward(&emis, L, B, &LENGTHS, &gold),
        100,
    );
    assert!(worst < 1e-6, "worst {worst:e} at {at}");
    crf.forward(&emis, L, B, &LENGTHS, &gold);
    let mut d = vec![0.0; emis.len()];
    crf.backward(scale, &mut d);
    let worst = check_input(&emis, &d, |e| {
        scale * crf.clone().forward(e, L, B, &LENGTHS, &gold)
    });
    assert!(worst < 1e-6, "emission gradient worst {worst:e}");
}
