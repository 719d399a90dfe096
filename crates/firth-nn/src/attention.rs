//! Attention of decoder queries over encoder states, as free forward/backward functions.
//!
//! Query row n (N rows, e.g. one decoder step (B, Dq) or all of them (T, B, Dq)) belongs to
//! sequence b = n mod B and attends over that sequence's keys and values, which are
//! time-major like the output of firth-models' `SeqEncoder`: keys (S, B, Dk), values (S, B, Dv). Source
//! positions s ≥ len_b are padding and get weight 0. For row n:
//!
//! ```text
//! e_s = score(q_n, k_{s,b})                 s < len_b
//! α   = softmax(e)                          over s < len_b, α_s = 0 beyond
//! c_n = Σ_s α_s v_{s,b}                     the context, (N, Dv)
//! ```
//!
//! with one of three scores ([`AttentionKind`]):
//!
//! - dot (Luong): e = q·k, Dq = Dk;
//! - general (Luong): e = qᵀ W k, W (Dq, Dk) stored as its transpose (Dk, Dq), so that the
//!   projected keys k' = k·Wᵀ (S·B, Dq) come from one GEMM and e = q·k';
//! - additive (Bahdanau): e = vᵀ tanh(W_q q + W_k k), W_q stored (Dq, A), W_k (Dk, A), v (A).
//!
//! Backward, given dc = dL/dc_n:
//!
//! ```text
//! dα_s = dc·v_s,   dv_s += α_s dc,   de = α ⊙ (dα - Σ_s dα_s α_s)      (softmax backward)
//! dot:       dq += Σ_s de_s k_s,   dk_s += de_s q
//! general:   dq += Σ_s de_s k'_s,  dk'_s = de_s q,  and with M = Wᵀ (K' = K·M):
//!            dM += Kᵀ·dK',  dK += dK'·Mᵀ
//! additive:  u = tanh(W_q q + W_k k_s),  dv += Σ de_s u_s,  da_s = de_s v ⊙ (1 - u_s²),
//!            d(W_q q) = Σ_s da_s,  d(W_k k_s) = da_s,  then the two projections' backward
//! ```
//!
//! The caller owns the parameters ([`AttentionParams`], a [`ParamSet`]) and the cache of one
//! forward ([`AttentionCache`]); a decoder that attends once per step keeps a cache per step,
//! or passes all its queries at once when they do not depend on earlier contexts.

use crate::gemm::{gemm, Gemm, Op, Out};
use crate::param::{Param, ParamSet};
use crate::recurrent::resize;
use crate::softmax::{softmax_backward, softmax_forward};
use crate::Rng;
use serde::{Deserialize, Serialize};

/// How a query scores a key; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    /// e = q·k.
    Dot,
    /// e = qᵀ W k.
    General,
    /// e = vᵀ tanh(W_q q + W_k k), with `hidden` = A the width of the tanh layer.
    Additive { hidden: usize },
}

/// The scoring parameters: none for dot, W for general, (W_q, W_k, v) for additive.
#[derive(Clone, Debug)]
pub struct AttentionParams<T> {
    pub kind: AttentionKind,
    pub query: usize,
    pub key: usize,
    /// General: Wᵀ (Dk, Dq). Additive: W_q (Dq, A).
    pub w: Option<Param<T>>,
    /// Additive only: W_k (Dk, A).
    pub w_k: Option<Param<T>>,
    /// Additive only: v (A).
    pub v: Option<Param<T>>,
}

impl<T: Gemm> AttentionParams<T> {
    /// Weights uniform in ±`init_range`. Dot attention needs `query == key`.
    pub fn new(
        name: &str,
        kind: AttentionKind,
        query: usize,
        key: usize,
        init_range: f64,
        rng: &mut Rng,
    ) -> Self {
        let (mut w, mut w_k, mut v) = (None, None, None);
        match kind {
            AttentionKind::Dot => {
                assert_eq!(query, key, "dot attention needs queries as wide as keys")
            }
            AttentionKind::General => {
                w = Some(Param::uniform(
                    &format!("{name}.w"),
                    &[key, query],
                    init_range,
                    rng,
                ))
            }
            AttentionKind::Additive { hidden } => {
                let p = |n: &str, shape: &[usize], rng: &mut Rng| {
                    Some(Param::uniform(
                        &format!("{name}.{n}"),
                        shape,
                        init_range,
                        rng,
                    ))
                };
                w = p("w_q", &[query, hidden], rng);
                w_k = p("w_k", &[key, hidden], rng);
                v = p("v", &[hidden], rng);
            }
        }
        AttentionParams {
            kind,
            query,
            key,
            w,
            w_k,
            v,
        }
    }

    /// Width A of the additive score's tanh layer; 0 for the others.
    fn hidden(&self) -> usize {
        match self.kind {
            AttentionKind::Additive { hidden } => hidden,
            _ => 0,
        }
    }
}

impl<T: Gemm> ParamSet<T> for AttentionParams<T> {
    fn params(&self) -> Vec<&Param<T>> {
        [&self.w, &self.w_k, &self.v]
            .into_iter()
            .flatten()
            .collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        [&mut self.w, &mut self.w_k, &mut self.v]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// What one [`attention_forward`] leaves for its [`attention_backward`], plus scratch.
#[derive(Clone, Debug, Default)]
pub struct AttentionCache<T> {
    rows: usize,
    src: usize,
    batch: usize,
    /// α, (N, S); zero at padded sources.
    weights: Vec<T>,
    /// Row n's valid source count, len_{n mod B}, (N).
    row_lengths: Vec<usize>,
    /// General: k' (S, B, Dq). Additive: W_k k (S, B, A).
    keys_proj: Vec<T>,
    /// Additive: W_q q (N, A).
    queries_proj: Vec<T>,
    /// Additive: u = tanh(W_q q + W_k k), (N, S, A).
    act: Vec<T>,
    scores: Vec<T>,         // (N, S) scratch: e, then dα
    d_scores: Vec<T>,       // (N, S) de
    d_keys_proj: Vec<T>,    // like keys_proj
    d_queries_proj: Vec<T>, // like queries_proj
}

impl<T: Gemm> AttentionCache<T> {
    /// α of the last forward, (N, S), zero at padded sources.
    pub fn weights(&self) -> &[T] {
        &self.weights
    }
}

/// Shapes read off the buffers: (N, S, B, Dv).
fn shapes<T>(
    p: &AttentionParams<T>,
    queries: &[T],
    keys: &[T],
    values: &[T],
    lengths: &[usize],
) -> (usize, usize, usize, usize) {
    let batch = lengths.len();
    assert!(batch > 0, "attention needs at least one sequence");
    assert_eq!(queries.len() % p.query, 0, "queries are not (N, Dq)");
    let rows = queries.len() / p.query;
    assert_eq!(rows % batch, 0, "query rows are not a multiple of B");
    assert_eq!(keys.len() % (batch * p.key), 0, "keys are not (S, B, Dk)");
    let src = keys.len() / (batch * p.key);
    assert!(src > 0, "attention over an empty source");
    assert_eq!(values.len() % (src * batch), 0, "values are not (S, B, Dv)");
    assert!(
        lengths.iter().all(|&l| (1..=src).contains(&l)),
        "source lengths must be in 1..=S"
    );
    (rows, src, batch, values.len() / (src * batch))
}

/// Runs attention for `queries` (N, Dq) over `keys` (S, B, Dk) and `values` (S, B, Dv) with
/// source `lengths` (B), writing the contexts c (N, Dv) into `context` and keeping α (N, S)
/// and what the backward needs in `cache`. See the module documentation for the math.
pub fn attention_forward<T: Gemm>(
    p: &AttentionParams<T>,
    queries: &[T],
    keys: &[T],
    values: &[T],
    lengths: &[usize],
    cache: &mut AttentionCache<T>,
    context: &mut [T],
) {
    let (rows, src, batch, dv) = shapes(p, queries, keys, values, lengths);
    assert_eq!(context.len(), rows * dv, "context is not (N, Dv)");
    let (dq, dk, a) = (p.query, p.key, p.hidden());
    cache.rows = rows;
    cache.src = src;
    cache.batch = batch;
    cache.row_lengths.clear();
    cache
        .row_lengths
        .extend((0..rows).map(|n| lengths[n % batch]));
    resize(&mut cache.scores, rows * src);
    resize(&mut cache.weights, rows * src);
    match p.kind {
        AttentionKind::Dot => {
            for n in 0..rows {
                let q = &queries[n * dq..][..dq];
                let b = n % batch;
                for s in 0..cache.row_lengths[n] {
                    let k = &keys[(s * batch + b) * dk..][..dk];
                    cache.scores[n * src + s] = dot(q, k);
                }
            }
        }
        AttentionKind::General => {
            let w = &p.w.as_ref().expect("general attention has W").value;
            resize(&mut cache.keys_proj, src * batch * dq);
            // K' = K·Wᵀ: (S·B, Dq) = (S·B, Dk)·(Dk, Dq)
            gemm(
                &mut cache.keys_proj,
                Out::Set,
                keys,
                Op::N,
                w,
                Op::N,
                src * batch,
                dq,
                dk,
            );
            for n in 0..rows {
                let q = &queries[n * dq..][..dq];
                let b = n % batch;
                for s in 0..cache.row_lengths[n] {
                    let k = &cache.keys_proj[(s * batch + b) * dq..][..dq];
                    cache.scores[n * src + s] = dot(q, k);
                }
            }
        }
        AttentionKind::Additive { .. } => {
            let w_q = &p.w.as_ref().expect("additive attention has W_q").value;
            let w_k = &p.w_k.as_ref().expect("additive attention has W_k").value;
            let v = &p.v.as_ref().expect("additive attention has v").value;
            resize(&mut cache.queries_proj, rows * a);
            resize(&mut cache.keys_proj, src * batch * a);
            resize(&mut cache.act, rows * src * a);
            // (N, A) = (N, Dq)·(Dq, A) and (S·B, A) = (S·B, Dk)·(Dk, A)
            gemm(
                &mut cache.queries_proj,
                Out::Set,
                queries,
                Op::N,
                w_q,
                Op::N,
                rows,
                a,
                dq,
            );
            gemm(
                &mut cache.keys_proj,
                Out::Set,
                keys,
                Op::N,
                w_k,
                Op::N,
                src * batch,
                a,
                dk,
            );
            for n in 0..rows {
                let qp = &cache.queries_proj[n * a..][..a];
                let b = n % batch;
                for s in 0..cache.row_lengths[n] {
                    let kp = &cache.keys_proj[(s * batch + b) * a..][..a];
                    let u = &mut cache.act[(n * src + s) * a..][..a];
                    for ((u, &x), &y) in u.iter_mut().zip(qp).zip(kp) {
                        *u = (x + y).tanh();
                    }
                    cache.scores[n * src + s] = dot(u, v);
                }
            }
        }
    }
    softmax_forward(
        &cache.scores,
        &mut cache.weights,
        src,
        Some(&cache.row_lengths),
    );
    context.fill(T::ZERO);
    for n in 0..rows {
        let b = n % batch;
        let c = &mut context[n * dv..][..dv];
        for s in 0..cache.row_lengths[n] {
            let alpha = cache.weights[n * src + s];
            for (c, &x) in c.iter_mut().zip(&values[(s * batch + b) * dv..][..dv]) {
                *c += alpha * x;
            }
        }
    }
}

/// Backpropagates `d_context` (N, Dv) through the last [`attention_forward`] (run on the same
/// `queries`, `keys`, `values`): adds into the parameters' gradients and into `d_queries`
/// (N, Dq), `d_keys` (S, B, Dk) and `d_values` (S, B, Dv) where given. Padded sources get
/// nothing.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Gemm>(
    p: &mut AttentionParams<T>,
    queries: &[T],
    keys: &[T],
    values: &[T],
    cache: &mut AttentionCache<T>,
    d_context: &[T],
    mut d_queries: Option<&mut [T]>,
    mut d_keys: Option<&mut [T]>,
    d_values: Option<&mut [T]>,
) {
    let (rows, src, batch) = (cache.rows, cache.src, cache.batch);
    let (dq, dk, a) = (p.query, p.key, p.hidden());
    assert_eq!(
        queries.len(),
        rows * dq,
        "queries are not those of the forward"
    );
    assert_eq!(
        keys.len(),
        src * batch * dk,
        "keys are not those of the forward"
    );
    let dv = values.len() / (src * batch);
    assert_eq!(
        d_context.len(),
        rows * dv,
        "context gradient is not (N, Dv)"
    );
    if let Some(d) = &d_queries {
        assert_eq!(d.len(), queries.len(), "query gradient is not (N, Dq)");
    }
    if let Some(d) = &d_keys {
        assert_eq!(d.len(), keys.len(), "key gradient is not (S, B, Dk)");
    }
    // dα_s = dc·v_s (kept in `scores`), dv_s += α_s dc.
    let d_alpha = &mut cache.scores;
    d_alpha.fill(T::ZERO);
    let mut d_values = d_values;
    if let Some(d) = &d_values {
        assert_eq!(d.len(), values.len(), "value gradient is not (S, B, Dv)");
    }
    for n in 0..rows {
        let b = n % batch;
        let dc = &d_context[n * dv..][..dv];
        for s in 0..cache.row_lengths[n] {
            let at = (s * batch + b) * dv;
            d_alpha[n * src + s] = dot(dc, &values[at..][..dv]);
            if let Some(d) = d_values.as_deref_mut() {
                let alpha = cache.weights[n * src + s];
                for (d, &g) in d[at..][..dv].iter_mut().zip(dc) {
                    *d += alpha * g;
                }
            }
        }
    }
    resize(&mut cache.d_scores, rows * src);
    cache.d_scores.fill(T::ZERO);
    softmax_backward(&cache.weights, &cache.scores, &mut cache.d_scores, src);
    let de = &cache.d_scores;
    match p.kind {
        AttentionKind::Dot => {
            for n in 0..rows {
                let b = n % batch;
                for s in 0..cache.row_lengths[n] {
                    let g = de[n * src + s];
                    let at = (s * batch + b) * dk;
                    if let Some(d) = d_queries.as_deref_mut() {
                        axpy(&mut d[n * dq..][..dq], g, &keys[at..][..dk]);
                    }
                    if let Some(d) = d_keys.as_deref_mut() {
                        axpy(&mut d[at..][..dk], g, &queries[n * dq..][..dq]);
                    }
                }
            }
        }
        AttentionKind::General => {
            resize(&mut cache.d_keys_proj, src * batch * dq);
            cache.d_keys_proj.fill(T::ZERO);
            for n in 0..rows {
                let b = n % batch;
                for s in 0..cache.row_lengths[n] {
                    let g = de[n * src + s];
                    let at = (s * batch + b) * dq;
                    if let Some(d) = d_queries.as_deref_mut() {
                        axpy(&mut d[n * dq..][..dq], g, &cache.keys_proj[at..][..dq]);
                    }
                    axpy(
                        &mut cache.d_keys_proj[at..][..dq],
                        g,
                        &queries[n * dq..][..dq],
                    );
                }
            }
            let w = p.w.as_mut().expect("general attention has W");
            project_backward(w, keys, &cache.d_keys_proj, d_keys, src * batch, dk, dq);
        }
        AttentionKind::Additive { .. } => {
            resize(&mut cache.d_keys_proj, src * batch * a);
            resize(&mut cache.d_queries_proj, rows * a);
            cache.d_keys_proj.fill(T::ZERO);
            cache.d_queries_proj.fill(T::ZERO);
            let v = p.v.as_mut().expect("additive attention has v");
            for n in 0..rows {
                let b = n % batch;
                for s in 0..cache.row_lengths[n] {
                    let g = de[n * src + s];
                    let u = &cache.act[(n * src + s) * a..][..a];
                    // de/dv = u; de/d(pre) = v ⊙ (1 - u²)
                    axpy(&mut v.grad, g, u);
                    let dqp = &mut cache.d_queries_proj[n * a..][..a];
                    let dkp = &mut cache.d_keys_proj[(s * batch + b) * a..][..a];
                    for j in 0..a {
                        let da = g * v.value[j] * (T::ONE - u[j] * u[j]);
                        dqp[j] += da;
                        dkp[j] += da;
                    }
                }
            }
            let w_q = p.w.as_mut().expect("additive attention has W_q");
            project_backward(w_q, queries, &cache.d_queries_proj, d_queries, rows, dq, a);
            let w_k = p.w_k.as_mut().expect("additive attention has W_k");
            project_backward(w_k, keys, &cache.d_keys_proj, d_keys, src * batch, dk, a);
        }
    }
}

/// Backward of y = x·W for x (M, I), W (I, O): dW += xᵀ·dy and, if wanted, dx += dy·Wᵀ.
fn project_backward<T: Gemm>(
    w: &mut Param<T>,
    x: &[T],
    dy: &[T],
    dx: Option<&mut [T]>,
    m: usize,
    i: usize,
    o: usize,
) {
    // (I, O) += (M, I)ᵀ·(M, O)
    gemm(&mut w.grad, Out::Add, x, Op::T, dy, Op::N, i, o, m);
    if let Some(dx) = dx {
        // (M, I) += (M, O)·(I, O)ᵀ
        gemm(dx, Out::Add, dy, Op::N, &w.value, Op::T, m, i, o);
    }
}

/// a·b with 16 independent partial sums: a single running sum is one dependent chain of
/// additions (the compiler may not reorder float sums), 4 cycles each; the partial sums
/// vectorise. A decoder step takes B·S of these per score and per gradient.
pub fn dot<T: Gemm>(a: &[T], b: &[T]) -> T {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::ZERO; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: T = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    acc.iter().fold(tail, |s, &v| s + v)
}

/// y += g·x.
fn axpy<T: Gemm>(y: &mut [T], g: T, x: &[T]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += g * x;
    }
}
