//! Gradient checks (f64) of the sequence encoder and its independence from padding.

use firth_models::encoder::{EncoderConfig, SeqEncoder};
use firth_nn::gradcheck::{check_input, check_params};
use firth_nn::{CellKind, Rng};

const L: usize = 5;
const B: usize = 3;
const LENGTHS: [usize; B] = [5, 2, 1];

fn cfg(cell: CellKind, layers: usize, bidirectional: bool, dropout: f32) -> EncoderConfig {
    EncoderConfig {
        cell,
        input: 3,
        hidden: 4,
        layers,
        bidirectional,
        dropout,
    }
}

fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect()
}

/// Loss = Σ w ⊙ out with fixed random w (non-zero at padded rows too, which must be ignored).
fn check(c: EncoderConfig) {
    let mut rng = Rng::new(11);
    let mut enc = SeqEncoder::<f64>::new(&c, 0.5, &mut rng);
    let x = random(L * B * c.input, &mut rng);
    let w = random(L * B * enc.out_dim(), &mut rng);
    let train = c.dropout > 0.0;
    let loss = |e: &mut SeqEncoder<f64>, x: &[f64]| -> f64 {
        let y = e.forward(x, L, B, &LENGTHS, train, &mut Rng::new(5));
        y.iter().zip(&w).map(|(a, b)| a * b).sum()
    };
    let (worst, at) = check_params(
        &mut enc,
        |e| {
            let l = loss(e, &x);
            e.backward(&x, &w, None);
            l
        },
        |e| loss(e, &x),
        60,
    );
    assert!(worst < 1e-5, "{c:?}: worst {worst:e} at {at}");
    loss(&mut enc, &x);
    let mut dx = vec![7.0; x.len()]; // accumulated onto
    enc.backward(&x, &w, Some(&mut dx));
    dx.iter_mut().for_each(|d| *d -= 7.0);
    let worst = check_input(&x, &dx, |x| loss(&mut enc.clone(), x));
    assert!(worst < 1e-5, "{c:?}: input gradient worst {worst:e}");
}

#[test]
fn gradients_all_cells_uni_bi_one_two_layers() {
    for cell in [CellKind::RnnTanh, CellKind::Lstm, CellKind::Gru] {
        for layers in [1, 2] {
            for bi in [false, true] {
                check(cfg(cell, layers, bi, 0.0));
            }
        }
    }
}

#[test]
fn gradients_with_dropout_between_layers() {
    check(cfg(CellKind::Lstm, 2, true, 0.3));
}

#[test]
fn outputs_ignore_padding_and_other_batch_members() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
        let c = cfg(cell, 2, true, 0.0);
        let mut rng = Rng::new(2);
        let mut enc = SeqEncoder::<f64>::new(&c, 0.5, &mut rng);
        let i = c.input;
        let od = enc.out_dim();
        let x = random(L * B * i, &mut rng);
        let out = enc.forward(&x, L, B, &LENGTHS, false, &mut rng).to_vec();
        // Change the padding and the other members: sequence 1's outputs stay the same.
        let mut x2 = random(L * B * i, &mut rng);
        for t in 0..LENGTHS[1] {
            x2[(t * B + 1) * i..][..i].copy_from_slice(&x[(t * B + 1) * i..][..i]);
        }
        let out2 = enc.forward(&x2, L, B, &[4, 2, 3], false, &mut rng).to_vec();
        // Sequence 1 alone, in a batch of one with a longer padded length.
        let steps = 4;
        let mut x3 = random(steps * i, &mut rng);
        for t in 0..LENGTHS[1] {
            x3[t * i..][..i].copy_from_slice(&x[(t * B + 1) * i..][..i]);
        }
        let out3 = enc.forward(&x3, steps, 1, &[2], false, &mut rng).to_vec();
        for t in 0..L {
            let a = &out[(t * B + 1) * od..][..od];
            let b = &out2[(t * B + 1) * od..][..od];
            assert_eq!(a, b, "{cell:?} t={t}");
            if t < steps {
                let d = &out3[t * od..][..od];
                for (p, q) in a.iter().zip(d) {
                    assert!((p - q).abs() < 1e-12, "{cell:?} t={t}");
                }
            }
            if t >= LENGTHS[1] {
                assert!(a.iter().all(|&v| v == 0.0), "padded row not zero");
            }
        }
        // The backward direction starts at the sequence's own last token: at its last real
        // position it has seen exactly one input, like a forward step from zero.
        let h = c.hidden;
        let last = &out[(B + 1) * od..][..od]; // t = 1 = len - 1 for sequence 1
        assert!(last[h..].iter().any(|&v| v != 0.0));
    }
}

/// Loss = Σ w ⊙ out + Σ p ⊙ final_h (+ Σ q ⊙ final_c for an LSTM).
fn check_final_states(c: EncoderConfig) {
    let mut rng = Rng::new(29);
    let mut enc = SeqEncoder::<f64>::new(&c, 0.5, &mut rng);
    let lstm = c.cell == CellKind::Lstm;
    let x = random(L * B * c.input, &mut rng);
    let w = random(L * B * enc.out_dim(), &mut rng);
    let dirs = if c.bidirectional { 2 } else { 1 };
    let finals = c.layers * dirs * B * c.hidden;
    let p = random(finals, &mut rng);
    let q = random(finals, &mut rng);
    let loss = |e: &mut SeqEncoder<f64>, x: &[f64]| -> f64 {
        let y = e.forward(x, L, B, &LENGTHS, false, &mut Rng::new(5));
        let mut v: f64 = y.iter().zip(&w).map(|(a, b)| a * b).sum();
        v += e.final_h().iter().zip(&p).map(|(a, b)| a * b).sum::<f64>();
        if lstm {
            v += e.final_c().iter().zip(&q).map(|(a, b)| a * b).sum::<f64>();
        }
        v
    };
    let backward = |e: &mut SeqEncoder<f64>, dx: Option<&mut [f64]>| {
        e.add_d_final(&p, lstm.then_some(&q[..]));
        e.backward(&x, &w, dx);
    };
    let (worst, at) = check_params(
        &mut enc,
        |e| {
            let l = loss(e, &x);
            backward(e, None);
            l
        },
        |e| loss(e, &x),
        60,
    );
    assert!(worst < 1e-5, "{c:?}: worst {worst:e} at {at}");
    loss(&mut enc, &x);
    let mut dx = vec![0.0; x.len()];
    backward(&mut enc, Some(&mut dx));
    let worst = check_input(&x, &dx, |x| loss(&mut enc.clone(), x));
    assert!(worst < 1e-5, "{c:?}: input gradient worst {worst:e}");
}

#[test]
fn gradients_into_final_states() {
    for cell in [CellKind::RnnTanh, CellKind::Lstm, CellKind::Gru] {
        for (layers, bi) in [(1, false), (2, true)] {
            check_final_states(cfg(cell, layers, bi, 0.0));
        }
    }
}

#[test]
fn final_states_are_each_sequence_own_last_states() {
    for cell in [CellKind::Lstm, CellKind::Gru] {
        let c = cfg(cell, 2, true, 0.0);
        let mut rng = Rng::new(4);
        let mut enc = SeqEncoder::<f64>::new(&c, 0.5, &mut rng);
        let (i, h, od) = (c.input, c.hidden, enc.out_dim());
        let x = random(L * B * i, &mut rng);
        let out = enc.forward(&x, L, B, &LENGTHS, false, &mut rng).to_vec();
        let (fh, fc) = (enc.final_h().to_vec(), enc.final_c().to_vec());
        assert_eq!(fh.len(), 2 * 2 * B * h);
        assert_eq!(fc.len(), if cell == CellKind::Lstm { fh.len() } else { 0 });
        for b in 0..B {
            let n = LENGTHS[b];
            // Top layer (blocks 2 and 3): forward state at len - 1, backward state at token 0.
            let fwd = &fh[(2 * B + b) * h..][..h];
            let bwd = &fh[(3 * B + b) * h..][..h];
            assert_eq!(fwd, &out[((n - 1) * B + b) * od..][..h]);
            assert_eq!(bwd, &out[b * od + h..][..h]);
            // The same sequence alone, without padding, ends with the same states.
            let xb: Vec<f64> = (0..n)
                .flat_map(|t| x[(t * B + b) * i..][..i].to_vec())
                .collect();
            enc.forward(&xb, n, 1, &[n], false, &mut rng);
            for block in 0..4 {
                let alone = &enc.final_h()[block * h..][..h];
                let padded = &fh[(block * B + b) * h..][..h];
                for (u, v) in alone.iter().zip(padded) {
                    assert!((u - v).abs() < 1e-12, "{cell:?} h block {block} b {b}");
                }
                if cell == CellKind::Lstm {
                    let alone = &enc.final_c()[block * h..][..h];
                    let padded = &fc[(block * B + b) * h..][..h];
                    for (u, v) in alone.iter().zip(padded) {
                        assert!((u - v).abs() < 1e-12, "c block {block} b {b}");
                    }
                }
            }
        }
    }
}
