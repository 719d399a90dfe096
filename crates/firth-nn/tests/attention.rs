//! Attention's gradients against finite differences (f64, with padded sources) and a case
//! worked by hand.

use firth_nn::attention::{
    attention_backward, attention_forward, AttentionCache, AttentionKind, AttentionParams,
};
use firth_nn::gradcheck::{check_input, check_params};
use firth_nn::Rng;

const S: usize = 4;
const B: usize = 3;
const LENGTHS: [usize; B] = [4, 2, 1];

fn random(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

struct Case {
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    r: Vec<f64>,
    dv: usize,
}

/// L = Σ c ⊙ R for two decoder steps' queries at once, (2, B, Dq).
fn loss(p: &AttentionParams<f64>, c: &Case, q: &[f64], k: &[f64], v: &[f64]) -> f64 {
    let mut ctx = vec![0.0; c.r.len()];
    let mut cache = AttentionCache::default();
    attention_forward(p, q, k, v, &LENGTHS, &mut cache, &mut ctx);
    // Padded sources get weight exactly 0.
    for (n, row) in cache.weights().chunks(S).enumerate() {
        assert!(row[LENGTHS[n % B]..].iter().all(|&a| a == 0.0));
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    dot(&ctx, &c.r)
}

fn check(kind: AttentionKind, dq: usize, dk: usize) {
    let mut rng = Rng::new(23);
    let mut p = AttentionParams::<f64>::new("att", kind, dq, dk, 0.8, &mut rng);
    let dv = 3;
    let rows = 2 * B;
    let c = Case {
        q: random(rows * dq, &mut rng),
        k: random(S * B * dk, &mut rng),
        v: random(S * B * dv, &mut rng),
        r: random(rows * dv, &mut rng),
        dv,
    };
    let backward = |p: &mut AttentionParams<f64>,
                    dq_out: Option<&mut [f64]>,
                    dk_out: Option<&mut [f64]>,
                    dv_out: Option<&mut [f64]>| {
        let mut ctx = vec![0.0; rows * c.dv];
        let mut cache = AttentionCache::default();
        attention_forward(p, &c.q, &c.k, &c.v, &LENGTHS, &mut cache, &mut ctx);
        attention_backward(
            p, &c.q, &c.k, &c.v, &mut cache, &c.r, dq_out, dk_out, dv_out,
        );
    };
    let (worst, at) = check_params(
        &mut p,
        |p| {
            backward(p, None, None, None);
            loss(p, &c, &c.q, &c.k, &c.v)
        },
        |p| loss(p, &c, &c.q, &c.k, &c.v),
        1000,
    );
    assert!(
        worst < 1e-6,
        "{kind:?}: parameter gradient {worst:e} at {at}"
    );
    // Input gradients accumulate onto what the buffers held.
    let (mut gq, mut gk, mut gv) = (
        vec![1.0; c.q.len()],
        vec![1.0; c.k.len()],
        vec![1.0; c.v.len()],
    );
    backward(&mut p, Some(&mut gq), Some(&mut gk), Some(&mut gv));
    for g in [&mut gq, &mut gk, &mut gv] {
        g.iter_mut().for_each(|x| *x -= 1.0);
    }
    let e = check_input(&c.q, &gq, |q| loss(&p, &c, q, &c.k, &c.v));
    assert!(e < 1e-6, "{kind:?}: dq {e:e}");
    let e = check_input(&c.k, &gk, |k| loss(&p, &c, &c.q, k, &c.v));
    assert!(e < 1e-6, "{kind:?}: dkeys {e:e}");
    let e = check_input(&c.v, &gv, |v| loss(&p, &c, &c.q, &c.k, v));
    assert!(e < 1e-6, "{kind:?}: dvalues {e:e}");
    // Padded source positions get no gradient.
    for s in 0..S {
        for b in 0..B {
            if s >= LENGTHS[b] {
                assert!(gk[(s * B + b) * dk..][..dk]
                    .iter()
                    .all(|&g| g.abs() < 1e-15));
                assert!(gv[(s * B + b) * dv..][..dv]
                    .iter()
                    .all(|&g| g.abs() < 1e-15));
            }
        }
    }
}

#[test]
fn dot_gradients() {
    check(AttentionKind::Dot, 5, 5);
}

#[test]
fn general_gradients() {
    check(AttentionKind::General, 4, 6);
}

#[test]
fn additive_gradients() {
    check(AttentionKind::Additive { hidden: 5 }, 4, 6);
}

#[test]
fn dot_attention_by_hand() {
    // q = (1, 0); keys (0, 0), (ln 3, 5), (9, 9) with the last one padding (length 2):
    // scores (0, ln 3) → α = (1/4, 3/4, 0); values (4, 0), (0, 8): c = (1, 6).
    let p = AttentionParams::<f64>::new("att", AttentionKind::Dot, 2, 2, 0.1, &mut Rng::new(0));
    let mut p = p;
    let q = [1.0, 0.0];
    let k = [0.0, 0.0, 3f64.ln(), 5.0, 9.0, 9.0];
    let v = [4.0, 0.0, 0.0, 8.0, 100.0, 100.0];
    let mut cache = AttentionCache::default();
    let mut ctx = [0.0; 2];
    attention_forward(&p, &q, &k, &v, &[2], &mut cache, &mut ctx);
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    assert!(
        close(cache.weights(), &[0.25, 0.75, 0.0]),
        "{:?}",
        cache.weights()
    );
    assert!(close(&ctx, &[1.0, 6.0]), "{ctx:?}");
    // dc = (1, 0): dα = (4, 0), Σ dα α = 1, de = α ⊙ (dα - 1) = (3/4, -3/4).
    // dq = Σ de_s k_s = -3/4 (ln 3, 5); dk_s = de_s q; dv_s = α_s dc.
    let (mut gq, mut gk, mut gv) = ([0.0; 2], [0.0; 6], [0.0; 6]);
    attention_backward(
        &mut p,
        &q,
        &k,
        &v,
        &mut cache,
        &[1.0, 0.0],
        Some(&mut gq),
        Some(&mut gk),
        Some(&mut gv),
    );
    assert!(close(&gq, &[-0.75 * 3f64.ln(), -3.75]), "{gq:?}");
    assert!(close(&gk, &[0.75, 0.0, -0.75, 0.0, 0.0, 0.0]), "{gk:?}");
    assert!(close(&gv, &[0.25, 0.0, 0.75, 0.0, 0.0, 0.0]), "{gv:?}");
}
