//! Linear-chain conditional random field over a padded batch of tag sequences.
//!
//! For a sentence of n tokens with emission scores e_t(k) (from the network) and learned
//! transition scores A(i, j) (tag i followed by tag j), start scores s(k) and end scores z(k),
//! the score of a tag sequence y is
//!
//! ```text
//! S(y) = s(y_0) + Σ_t e_t(y_t) + Σ_{t≥1} A(y_{t-1}, y_t) + z(y_{n-1})
//! ```
//!
//! and p(y | x) = exp S(y) / Z with Z = Σ_y exp S(y). The loss is the negative log-likelihood
//! log Z - S(y*) of the gold sequence y*.
//!
//! **Forward algorithm** (log space): α_0(k) = s(k) + e_0(k),
//! α_t(k) = e_t(k) + logsumexp_i(α_{t-1}(i) + A(i, k)), log Z = logsumexp_k(α_{n-1}(k) + z(k)).
//!
//! **Gradient.** ∂ log Z / ∂θ is the expectation of ∂S/∂θ under p, so with the backward
//! scores β_{n-1}(k) = z(k), β_t(i) = logsumexp_k(A(i, k) + e_{t+1}(k) + β_{t+1}(k)):
//!
//! ```text
//! ∂NLL/∂e_t(k)  = P(y_t = k) - [y*_t = k],           P(y_t = k) = exp(α_t(k) + β_t(k) - log Z)
//! ∂NLL/∂A(i, j) = Σ_{t≥1} P(y_{t-1} = i, y_t = j) - #{t: y*_{t-1} = i, y*_t = j},
//!                 P(y_{t-1} = i, y_t = j) = exp(α_{t-1}(i) + A(i, j) + e_t(j) + β_t(j) - log Z)
//! ∂NLL/∂s(k)    = P(y_0 = k) - [y*_0 = k],     ∂NLL/∂z(k) = P(y_{n-1} = k) - [y*_{n-1} = k]
//! ```
//!
//! **Viterbi** replaces logsumexp by max and keeps back-pointers.
//!
//! Emissions are time-major (L, B, K) like the encoder's outputs; `lengths[b]` says how many
//! positions of sequence b are real. The recursions run in f64 whatever `T` is: K is small (a
//! few dozen tags), so this costs little next to the network, and log Z stays accurate.

use crate::param::{Param, ParamSet};
use crate::{Real, Rng};

#[derive(Clone, Debug)]
pub struct Crf<T> {
    pub tags: usize,
    pub trans: Param<T>, // (K, K): trans[i·K + j] = A(i → j)
    pub start: Param<T>, // (K)
    pub end: Param<T>,   // (K)
    steps: usize,
    batch: usize,
    lengths: Vec<usize>,
    gold: Vec<u32>,   // (L, B)
    alpha: Vec<f64>,  // (L, B, K)
    log_z: Vec<f64>,  // (B)
    beta: Vec<f64>,   // (K) scratch for one step of the backward recursion
    beta_n: Vec<f64>, // (K) scratch
    ef: Vec<f64>,     // (L, B, K) emissions in f64
    tmp: Vec<f64>,    // (K) scratch
}

impl<T: Real> Crf<T> {
    /// Transition, start and end scores uniform in ±`init_range` (0 is a fine choice too).
    pub fn new(name: &str, tags: usize, init_range: f64, rng: &mut Rng) -> Self {
        Crf {
            tags,
            trans: Param::uniform(&format!("{name}.trans"), &[tags, tags], init_range, rng),
            start: Param::uniform(&format!("{name}.start"), &[tags], init_range, rng),
            end: Param::uniform(&format!("{name}.end"), &[tags], init_range, rng),
            steps: 0,
            batch: 0,
            lengths: Vec::new(),
            gold: Vec::new(),
            alpha: Vec::new(),
            log_z: Vec::new(),
            beta: Vec::new(),
            beta_n: Vec::new(),
            ef: Vec::new(),
            tmp: Vec::new(),
        }
    }

    fn check_shapes(&self, emis: &[T], steps: usize, batch: usize, lengths: &[usize]) {
        assert_eq!(
            emis.len(),
            steps * batch * self.tags,
            "CRF emissions are not (L, B, K)"
        );
        assert_eq!(lengths.len(), batch, "CRF lengths are not (B)");
        assert!(lengths.iter().all(|&n| n <= steps), "CRF length beyond L");
    }

    /// Runs the forward algorithm and returns Σ_b NLL_b (sequences of length 0 add 0).
    /// Caches what [`Self::backward`] needs. `gold` is (L, B); padded entries are ignored.
    pub fn forward(
        &mut self,
        emis: &[T],
        steps: usize,
        batch: usize,
        lengths: &[usize],
        gold: &[u32],
    ) -> f64 {
        self.check_shapes(emis, steps, batch, lengths);
        assert_eq!(gold.len(), steps * batch, "CRF gold tags are not (L, B)");
        let k_n = self.tags;
        self.steps = steps;
        self.batch = batch;
        self.lengths.clear();
        self.lengths.extend_from_slice(lengths);
        self.gold.clear();
        self.gold.extend_from_slice(gold);
        self.ef.clear();
        self.ef.extend(emis.iter().map(|v| v.to_f64()));
        self.alpha.clear();
        self.alpha.resize(steps * batch * k_n, 0.0);
        self.log_z.clear();
        self.log_z.resize(batch, 0.0);
        self.tmp.resize(k_n, 0.0);
        let trans: Vec<f64> = self.trans.value.iter().map(|v| v.to_f64()).collect();
        let start: Vec<f64> = self.start.value.iter().map(|v| v.to_f64()).collect();
        let end: Vec<f64> = self.end.value.iter().map(|v| v.to_f64()).collect();
        let mut total = 0.0;
        for b in 0..batch {
            let n = lengths[b];
            if n == 0 {
                continue;
            }
            let at = |t: usize| (t * batch + b) * k_n;
            for k in 0..k_n {
                self.alpha[at(0) + k] = start[k] + self.ef[at(0) + k];
            }
            for t in 1..n {
                let (prev, cur) = self.alpha.split_at_mut(at(t));
                let prev = &prev[at(t - 1)..at(t - 1) + k_n];
                for k in 0..k_n {
                    for i in 0..k_n {
                        self.tmp[i] = prev[i] + trans[i * k_n + k];
                    }
                    cur[k] = self.ef[at(t) + k] + logsumexp(&self.tmp);
                }
            }
            for k in 0..k_n {
                self.tmp[k] = self.alpha[at(n - 1) + k] + end[k];
            }
            let log_z = logsumexp(&self.tmp);
            self.log_z[b] = log_z;
            // Gold score S(y*).
            let y = |t: usize| {
                let v = gold[t * batch + b] as usize;
                assert!(v < k_n, "CRF gold tag {v} out of range");
                v
            };
            let mut s = start[y(0)] + end[y(n - 1)];
            for t in 0..n {
                s += self.ef[at(t) + y(t)];
                if t > 0 {
                    s += trans[y(t - 1) * k_n + y(t)];
                }
            }
            total += log_z - s;
        }
        total
    }

    /// Backpropagates `scale`·NLL of the last forward: adds `scale`·∂NLL/∂e into `d_emis`
    /// (L, B, K), padded rows untouched, and `scale`·∂NLL/∂{A, s, z} into the parameter grads.
    pub fn backward(&mut self, scale: f64, d_emis: &mut [T]) {
        let (steps, batch, k_n) = (self.steps, self.batch, self.tags);
        assert_eq!(
            d_emis.len(),
            steps * batch * k_n,
            "CRF d_emis is not (L, B, K)"
        );
        let trans: Vec<f64> = self.trans.value.iter().map(|v| v.to_f64()).collect();
        let end: Vec<f64> = self.end.value.iter().map(|v| v.to_f64()).collect();
        let mut d_trans = vec![0.0f64; k_n * k_n];
        let mut d_start = vec![0.0f64; k_n];
        let mut d_end = vec![0.0f64; k_n];
        self.beta.resize(k_n, 0.0);
        self.beta_n.resize(k_n, 0.0);
        self.tmp.resize(k_n, 0.0);
        for b in 0..batch {
            let n = self.lengths[b];
            if n == 0 {
                continue;
            }
            let at = |t: usize| (t * batch + b) * k_n;
            let log_z = self.log_z[b];
            let y = |t: usize| self.gold[t * batch + b] as usize;
            // β_{n-1} = z.
            self.beta.copy_from_slice(&end);
            for t in (0..n).rev() {
                // Unary marginals at t.
                for k in 0..k_n {
                    let p = (self.alpha[at(t) + k] + self.beta[k] - log_z).exp();
                    let g = p - if y(t) == k { 1.0 } else { 0.0 };
                    d_emis[at(t) + k] += T::from_f64(scale * g);
                    if t == 0 {
                        d_start[k] += g;
                    }
                    if t == n - 1 {
                        d_end[k] += g;
                    }
                }
                if t == 0 {
                    break;
                }
                // Pair marginals (t-1, t) and β_{t-1}.
                for i in 0..k_n {
                    let a = self.alpha[at(t - 1) + i];
                    for j in 0..k_n {
                        let v = trans[i * k_n + j] + self.ef[at(t) + j] + self.beta[j];
                        self.tmp[j] = v;
                        d_trans[i * k_n + j] += (a + v - log_z).exp();
                    }
                    self.beta_n[i] = logsumexp(&self.tmp);
                }
                d_trans[y(t - 1) * k_n + y(t)] -= 1.0;
                std::mem::swap(&mut self.beta, &mut self.beta_n);
            }
        }
        for (g, d) in self.trans.grad.iter_mut().zip(&d_trans) {
            *g += T::from_f64(scale * d);
        }
        for (g, d) in self.start.grad.iter_mut().zip(&d_start) {
            *g += T::from_f64(scale * d);
        }
        for (g, d) in self.end.grad.iter_mut().zip(&d_end) {
            *g += T::from_f64(scale * d);
        }
    }

    /// log Z of each sequence of the last forward, (B).
    pub fn log_partition(&self) -> &[f64] {
        &self.log_z
    }

    /// Most probable tag sequences: writes (L, B) tags into `out` (padded entries 0) and
    /// returns each sequence's best score.
    pub fn viterbi(
        &self,
        emis: &[T],
        steps: usize,
        batch: usize,
        lengths: &[usize],
        out: &mut [u32],
    ) -> Vec<f64> {
        self.check_shapes(emis, steps, batch, lengths);
        assert_eq!(out.len(), steps * batch, "CRF output is not (L, B)");
        let k_n = self.tags;
        let trans: Vec<f64> = self.trans.value.iter().map(|v| v.to_f64()).collect();
        let mut delta = vec![0.0f64; k_n];
        let mut next = vec![0.0f64; k_n];
        let mut back = vec![0u32; steps * k_n];
        let mut best = vec![0.0; batch];
        out.fill(0);
        for b in 0..batch {
            let n = lengths[b];
            if n == 0 {
                continue;
            }
            let e = |t: usize, k: usize| emis[(t * batch + b) * k_n + k].to_f64();
            for k in 0..k_n {
                delta[k] = self.start.value[k].to_f64() + e(0, k);
            }
            for t in 1..n {
                for j in 0..k_n {
                    let (mut arg, mut m) = (0, f64::NEG_INFINITY);
                    for i in 0..k_n {
                        let v = delta[i] + trans[i * k_n + j];
                        if v > m {
                            m = v;
                            arg = i;
                        }
                    }
                    next[j] = m + e(t, j);
                    back[t * k_n + j] = arg as u32;
                }
                std::mem::swap(&mut delta, &mut next);
            }
            let (mut arg, mut m) = (0, f64::NEG_INFINITY);
            for k in 0..k_n {
                let v = delta[k] + self.end.value[k].to_f64();
                if v > m {
                    m = v;
                    arg = k;
                }
            }
            best[b] = m;
            let mut cur = arg as u32;
            for t in (0..n).rev() {
                out[t * batch + b] = cur;
                if t > 0 {
                    cur = back[t * k_n + cur as usize];
                }
            }
        }
        best
    }
}

/// log Σ exp(x), shifted by the maximum so no term overflows.
pub fn logsumexp(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

impl<T: Real> ParamSet<T> for Crf<T> {
    fn params(&self) -> Vec<&Param<T>> {
        vec![&self.trans, &self.start, &self.end]
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        vec![&mut self.trans, &mut self.start, &mut self.end]
    }
}
