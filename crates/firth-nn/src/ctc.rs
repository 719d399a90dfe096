//! Connectionist temporal classification (Graves et al., 2006): the loss of a label sequence
//! given per-frame scores, summed over every alignment, as free forward/backward functions.
//!
//! **Inputs.** `logits` (T, B, V) are the network's unnormalised scores, time-major like the
//! encoder's outputs; the functions take the log-softmax themselves, so the backward pass gives
//! the gradient with respect to the *logits* (not the log-probabilities). Item b has
//! `input_lengths[b]` ≤ T real frames (the rest is padding: it is not read and gets no
//! gradient), and its labels are the next `target_lengths[b]` entries of `targets`, which holds
//! all items' labels one after the other (no padding). Labels are in 0..V and never the blank.
//!
//! **Forward (α) recursion, in log space.** Put a blank before, between and after the labels:
//! l' = (∅, y_1, ∅, y_2, …, y_L, ∅), S = 2L + 1 states. With lp_t(k) = log softmax(z_t)_k,
//!
//! ```text
//! α_0(0) = lp_0(∅),   α_0(1) = lp_0(y_1),   α_0(s) = -∞ for s ≥ 2
//! α_t(s) = lp_t(l'_s) + logsumexp(α_{t-1}(s), α_{t-1}(s-1), α_{t-1}(s-2))
//! ```
//!
//! where the skip from s-2 is allowed only when l'_s is a label different from l'_{s-2} (one
//! cannot jump over the blank between two equal labels: "1 1" needs "1 ∅ 1"). Then
//! log p(y|x) = logsumexp(α_{T-1}(S-1), α_{T-1}(S-2)) and the loss is -log p(y|x).
//!
//! **Backward (β) recursion**, mirrored, with β including the frame's own emission:
//!
//! ```text
//! β_{T-1}(S-1) = lp_{T-1}(∅),   β_{T-1}(S-2) = lp_{T-1}(y_L)
//! β_t(s) = lp_t(l'_s) + logsumexp(β_{t+1}(s), β_{t+1}(s+1), β_{t+1}(s+2))   (same skip rule)
//! ```
//!
//! so α_t(s) + β_t(s) - lp_t(l'_s) is the log of the probability mass of all alignments that sit
//! in state s at frame t.
//!
//! **Gradient.** The occupation of unit k at frame t is
//! γ_t(k) = Σ_{s: l'_s = k} exp(α_t(s) + β_t(s) - lp_t(k) - log p(y|x)). Each alignment's
//! probability is a product of its frames' softmax outputs, so ∂ log p / ∂ lp_t(k) = γ_t(k);
//! through the log-softmax (∂ lp_t(j) / ∂ z_t(k) = δ_jk - p_t(k), and Σ_j γ_t(j) = 1):
//!
//! ```text
//! ∂ loss / ∂ z_t(k) = p_t(k) - γ_t(k)
//! ```
//!
//! **Impossible alignments.** An item needs at least L + (number of adjacent equal labels)
//! frames. With fewer, p(y|x) = 0: its loss is +∞, [`CtcCache::feasible`] says false for it, and
//! the backward pass gives it no gradient at all — PyTorch's `zero_infinity=True`. A trainer
//! should leave such items out of its average (and count them: they mean the features are too
//! coarse in time for the transcripts). An item with no labels has loss -Σ_t lp_t(∅); one with no
//! frames has loss 0 when it has no labels and +∞ otherwise.
//!
//! **Reductions.** The loss is per item; the caller weights items through `dloss` in
//! [`ctc_backward`]. PyTorch's `reduction='sum'` is dloss = 1, its `'mean'` (the default) is
//! dloss_b = 1 / (B · L_b) over the feasible items (each loss divided by its target length, then
//! the mean over the batch).
//!
//! The recursions run in f64 whatever `T` is, like the CRF's: S is small next to V·H, and the
//! log-probabilities of long utterances stay accurate.

use crate::Real;

/// log(e^a + e^b) that stays exact for -∞ operands (no ∞ - ∞).
#[inline]
pub fn lse(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// What [`ctc_forward`] leaves for [`ctc_backward`].
#[derive(Clone, Debug, Default)]
pub struct CtcCache {
    steps: usize,
    batch: usize,
    units: usize,
    blank: usize,
    input_lengths: Vec<usize>,
    /// Item b's extended labels l' start at `ext_start[b]` in `ext` and are 2L_b + 1 long.
    ext: Vec<u32>,
    ext_start: Vec<usize>,
    /// Item b's α and β, (T_b, S_b) each, start at `lattice_start[b]`.
    alpha: Vec<f64>,
    beta: Vec<f64>,
    lattice_start: Vec<usize>,
    /// log softmax of the logits, (T, B, V); padded frames are left at 0.
    log_probs: Vec<f64>,
    /// -log p(y_b | x_b), (B); +∞ when no alignment exists.
    losses: Vec<f64>,
}

impl CtcCache {
    /// The loss of each item of the last forward, (B): -log p(y|x), +∞ for an impossible one.
    pub fn losses(&self) -> &[f64] {
        &self.losses
    }

    /// Whether item b of the last forward had any alignment (its loss is finite).
    pub fn feasible(&self, b: usize) -> bool {
        self.losses[b].is_finite()
    }

    /// log softmax of the last forward's logits, (T, B, V), in f64; zero in padded frames.
    pub fn log_probs(&self) -> &[f64] {
        &self.log_probs
    }
}

/// The fewest frames that can emit `labels`: one per label plus a blank between each pair of
/// equal neighbours.
pub fn min_frames(labels: &[u32]) -> usize {
    labels.len() + labels.windows(2).filter(|w| w[0] == w[1]).count()
}

/// Computes the CTC loss of each item of a batch (see the module documentation): `logits`
/// (T, B, V), `input_lengths` (B) each ≤ T, `targets` the labels of all items one after the
/// other, `target_lengths` (B), `blank` the blank's index in 0..V. Writes each item's loss into
/// the cache ([`CtcCache::losses`]) and returns the sum of the finite ones.
///
/// Panics when the shapes disagree or a label is out of range or the blank: those are bugs in
/// the caller, which maps transcripts to labels before this.
#[allow(clippy::too_many_arguments)]
pub fn ctc_forward<T: Real>(
    logits: &[T],
    units: usize,
    input_lengths: &[usize],
    targets: &[u32],
    target_lengths: &[usize],
    blank: usize,
    cache: &mut CtcCache,
) -> f64 {
    let batch = input_lengths.len();
    assert!(batch > 0 && units > 0, "CTC needs a batch and units");
    assert_eq!(
        logits.len() % (batch * units),
        0,
        "CTC logits are not (T, B, V)"
    );
    let steps = logits.len() / (batch * units);
    assert_eq!(
        target_lengths.len(),
        batch,
        "CTC target lengths are not (B)"
    );
    assert_eq!(
        targets.len(),
        target_lengths.iter().sum::<usize>(),
        "CTC targets are not the concatenated labels of the target lengths"
    );
    assert!(blank < units, "CTC blank {blank} is not below V = {units}");
    assert!(
        input_lengths.iter().all(|&n| n <= steps),
        "CTC input length beyond T = {steps}"
    );
    if let Some(&bad) = targets
        .iter()
        .find(|&&y| y as usize >= units || y as usize == blank)
    {
        panic!("CTC label {bad} is the blank ({blank}) or not below V = {units}");
    }

    cache.steps = steps;
    cache.batch = batch;
    cache.units = units;
    cache.blank = blank;
    cache.input_lengths.clear();
    cache.input_lengths.extend_from_slice(input_lengths);

    // log softmax, row by row, in f64.
    cache.log_probs.clear();
    cache.log_probs.resize(logits.len(), 0.0);
    for t in 0..steps {
        for (b, &len) in input_lengths.iter().enumerate() {
            if t >= len {
                continue;
            }
            let at = (t * batch + b) * units;
            let z = &logits[at..at + units];
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v.to_f64()));
            let s: f64 = z.iter().map(|&v| (v.to_f64() - m).exp()).sum();
            let log_z = m + s.ln();
            for (o, &v) in cache.log_probs[at..at + units].iter_mut().zip(z) {
                *o = v.to_f64() - log_z;
            }
        }
    }

    // Extended label sequences and the lattices' places.
    cache.ext.clear();
    cache.ext_start.clear();
    cache.lattice_start.clear();
    let mut lattice = 0;
    let mut first = 0;
    for b in 0..batch {
        let labels = &targets[first..first + target_lengths[b]];
        first += target_lengths[b];
        cache.ext_start.push(cache.ext.len());
        cache.ext.push(blank as u32);
        for &y in labels {
            cache.ext.push(y);
            cache.ext.push(blank as u32);
        }
        cache.lattice_start.push(lattice);
        lattice += input_lengths[b] * (2 * labels.len() + 1);
    }
    cache.alpha.clear();
    cache.alpha.resize(lattice, f64::NEG_INFINITY);
    cache.beta.clear();
    cache.beta.resize(lattice, f64::NEG_INFINITY);
    cache.losses.clear();
    cache.losses.resize(batch, 0.0);

    let mut total = 0.0;
    first = 0;
    for b in 0..batch {
        let labels = &targets[first..first + target_lengths[b]];
        first += target_lengths[b];
        let n = input_lengths[b];
        if n < min_frames(labels) {
            cache.losses[b] = f64::INFINITY;
            continue;
        }
        if n == 0 {
            continue; // no frames and (by the check above) no labels: p = 1
        }
        let loss = lattice_item(cache, b);
        cache.losses[b] = loss;
        total += loss;
    }
    total
}

/// Fills item b's α and β and returns its loss; the item is known to be feasible with n ≥ 1.
fn lattice_item(cache: &mut CtcCache, b: usize) -> f64 {
    let (batch, units) = (cache.batch, cache.units);
    let n = cache.input_lengths[b];
    let ext_at = cache.ext_start[b];
    let s_n = if b + 1 < cache.batch {
        cache.ext_start[b + 1] - ext_at
    } else {
        cache.ext.len() - ext_at
    };
    let ext = &cache.ext[ext_at..ext_at + s_n];
    let lp = |t: usize, k: u32| cache.log_probs[(t * batch + b) * units + k as usize];
    // The skip s-2 → s is allowed into a label that differs from the one two states back.
    let skip = |s: usize| s >= 2 && ext[s] as usize != cache.blank && ext[s] != ext[s - 2];
    let at = cache.lattice_start[b];
    let alpha = &mut cache.alpha[at..at + n * s_n]; // (T_b, S_b)
    alpha[0] = lp(0, ext[0]);
    if s_n > 1 {
        alpha[1] = lp(0, ext[1]);
    }
    for t in 1..n {
        let (prev, cur) = alpha[(t - 1) * s_n..(t + 1) * s_n].split_at_mut(s_n);
        for s in 0..s_n {
            let mut a = prev[s];
            if s >= 1 {
                a = lse(a, prev[s - 1]);
            }
            if skip(s) {
                a = lse(a, prev[s - 2]);
            }
            cur[s] = if a == f64::NEG_INFINITY {
                a
            } else {
                a + lp(t, ext[s])
            };
        }
    }
    let last = &alpha[(n - 1) * s_n..n * s_n];
    let log_p = if s_n > 1 {
        lse(last[s_n - 1], last[s_n - 2])
    } else {
        last[0]
    };

    let beta = &mut cache.beta[at..at + n * s_n]; // (T_b, S_b)
    beta[(n - 1) * s_n + s_n - 1] = lp(n - 1, ext[s_n - 1]);
    if s_n > 1 {
        beta[(n - 1) * s_n + s_n - 2] = lp(n - 1, ext[s_n - 2]);
    }
    for t in (0..n - 1).rev() {
        let (cur, next) = beta[t * s_n..(t + 2) * s_n].split_at_mut(s_n);
        for s in 0..s_n {
            let mut a = next[s];
            if s + 1 < s_n {
                a = lse(a, next[s + 1]);
            }
            if s + 2 < s_n && skip(s + 2) {
                a = lse(a, next[s + 2]);
            }
            cur[s] = if a == f64::NEG_INFINITY {
                a
            } else {
                a + lp(t, ext[s])
            };
        }
    }
    -log_p
}

/// `dlogits` (T, B, V) += `dloss[b]` · (p_t(k) - γ_t(k)) for every real frame of every feasible
/// item b of the last [`ctc_forward`]: the gradient of Σ_b dloss[b] · loss_b with respect to the
/// logits. `dloss` is the caller's weighting, e.g. 1/B for a batch mean. Impossible items (loss
/// +∞) and padded frames get nothing.
pub fn ctc_backward<T: Real>(cache: &CtcCache, dloss: &[f64], dlogits: &mut [T]) {
    let (batch, units) = (cache.batch, cache.units);
    assert_eq!(dloss.len(), batch, "CTC loss gradient is not (B)");
    assert_eq!(
        dlogits.len(),
        cache.steps * batch * units,
        "CTC logits gradient is not (T, B, V)"
    );
    let mut gamma = vec![0.0f64; units];
    for (b, &weight) in dloss.iter().enumerate() {
        let n = cache.input_lengths[b];
        if !cache.feasible(b) || n == 0 || weight == 0.0 {
            continue;
        }
        let log_p = -cache.losses[b];
        let ext_at = cache.ext_start[b];
        let s_n = if b + 1 < batch {
            cache.ext_start[b + 1] - ext_at
        } else {
            cache.ext.len() - ext_at
        };
        let ext = &cache.ext[ext_at..ext_at + s_n];
        let at = cache.lattice_start[b];
        for t in 0..n {
            let row = (t * batch + b) * units;
            let lp = &cache.log_probs[row..row + units];
            gamma.fill(0.0);
            for (s, &k) in ext.iter().enumerate() {
                let i = at + t * s_n + s;
                let (a, be) = (cache.alpha[i], cache.beta[i]);
                if a == f64::NEG_INFINITY || be == f64::NEG_INFINITY {
                    continue;
                }
                let k = k as usize;
                gamma[k] += (a + be - lp[k] - log_p).exp();
            }
            for ((d, &l), &g) in dlogits[row..row + units].iter_mut().zip(lp).zip(&gamma) {
                *d += T::from_f64(weight * (l.exp() - g));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    struct Case {
        name: String,
        units: usize,
        blank: usize,
        logits: Vec<f64>,
        input_lengths: Vec<usize>,
        targets: Vec<u32>,
        target_lengths: Vec<usize>,
        loss: Vec<f64>,
        grad: Vec<f64>,
    }

    fn torch_cases() -> Vec<Case> {
        let text = include_str!("../tests/fixtures/ctc/torch_ctc.json");
        let v: Value = serde_json::from_str(text).expect("fixture is JSON");
        let nums = |x: &Value| -> Vec<f64> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_f64().unwrap_or(f64::INFINITY)) // "inf" is stored as a string
                .collect()
        };
        let ints = |x: &Value| -> Vec<usize> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap() as usize)
                .collect()
        };
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Case {
                name: c["name"].as_str().unwrap().to_string(),
                units: c["units"].as_u64().unwrap() as usize,
                blank: c["blank"].as_u64().unwrap() as usize,
                logits: nums(&c["logits"]),
                input_lengths: ints(&c["input_lengths"]),
                targets: ints(&c["targets"]).into_iter().map(|y| y as u32).collect(),
                target_lengths: ints(&c["target_lengths"]),
                loss: nums(&c["loss"]),
                grad: nums(&c["grad"]),
            })
            .collect()
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-3)
    }

    #[test]
    fn matches_pytorch_losses_and_gradients() {
        for c in torch_cases() {
            let mut cache = CtcCache::default();
            ctc_forward(
                &c.logits,
                c.units,
                &c.input_lengths,
                &c.targets,
                &c.target_lengths,
                c.blank,
                &mut cache,
            );
            for (b, (&got, &want)) in cache.losses().iter().zip(&c.loss).enumerate() {
                if want.is_infinite() {
                    assert!(
                        got.is_infinite() && !cache.feasible(b),
                        "{} item {b}",
                        c.name
                    );
                } else {
                    assert!(
                        rel(got, want) < 1e-5,
                        "{} item {b}: {got} vs {want}",
                        c.name
                    );
                }
            }
            let mut d = vec![0.0; c.logits.len()];
            ctc_backward(&cache, &vec![1.0; c.input_lengths.len()], &mut d);
            for (i, (&got, &want)) in d.iter().zip(&c.grad).enumerate() {
                // Gradients are probabilities' differences, at most 1 in size: compare with a
                // floor so tiny entries are held to an absolute 1e-8.
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1e-3),
                    "{} grad[{i}]: {got} vs {want}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        for c in torch_cases() {
            let lf: Vec<f32> = c.logits.iter().map(|&x| x as f32).collect();
            let mut cache = CtcCache::default();
            ctc_forward(
                &lf,
                c.units,
                &c.input_lengths,
                &c.targets,
                &c.target_lengths,
                c.blank,
                &mut cache,
            );
            for (&got, &want) in cache.losses().iter().zip(&c.loss) {
                assert!(
                    want.is_infinite() || rel(got, want) < 1e-5,
                    "{got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // Repeats, an input exactly long enough (“2 2 3” in 4 frames), an empty target, an
        // impossible item (whose loss is left out, as a trainer would) and padding.
        let (steps, units) = (6, 5);
        let input_lengths = [6, 5, 4, 3, 2];
        let targets = [1u32, 2, 1, 1, 2, 2, 3, 4, 4];
        let target_lengths = [2, 2, 3, 0, 2];
        let batch = input_lengths.len();
        let x: Vec<f64> = (0..steps * batch * units)
            .map(|i| ((i * 37 % 23) as f64 - 11.0) / 5.0)
            .collect();
        let weights = [1.0, 0.5, 2.0, 1.5, 1.0];
        let loss = |x: &[f64]| {
            let mut c = CtcCache::default();
            ctc_forward(
                x,
                units,
                &input_lengths,
                &targets,
                &target_lengths,
                0,
                &mut c,
            );
            c.losses()
                .iter()
                .zip(weights)
                .filter(|(l, _)| l.is_finite())
                .map(|(l, w)| l * w)
                .sum::<f64>()
        };
        let mut cache = CtcCache::default();
        ctc_forward(
            &x,
            units,
            &input_lengths,
            &targets,
            &target_lengths,
            0,
            &mut cache,
        );
        assert!(!cache.feasible(4) && cache.feasible(2));
        let mut d = vec![0.5; x.len()]; // backward adds to what is there
        ctc_backward(&cache, &weights, &mut d);
        for g in d.iter_mut() {
            *g -= 0.5;
        }
        let worst = crate::gradcheck::check_input(&x, &d, loss);
        assert!(worst < 1e-6, "{worst:e}");
        // Padding and the impossible item get exactly nothing.
        for t in 0..steps {
            for b in 0..batch {
                let row = &d[(t * batch + b) * units..(t * batch + b + 1) * units];
                if t >= input_lengths[b] || b == 4 {
                    assert!(row.iter().all(|&g| g == 0.0), "t {t} b {b}");
                }
            }
        }
    }

    #[test]
    fn hand_computed_cases() {
        // Uniform scores over V = 2 (blank 0, label 1) and T = 2: each frame is 1/2 either way.
        // "1" has the alignments 1∅, ∅1, 11: p = 3/4. "1 1" needs 3 frames: impossible.
        // The empty target has only ∅∅: p = 1/4.
        let z = vec![0.0f64; 2 * 3 * 2];
        let mut c = CtcCache::default();
        ctc_forward(&z, 2, &[2, 2, 2], &[1, 1, 1], &[1, 2, 0], 0, &mut c);
        assert!((c.losses()[0] - (4.0f64 / 3.0).ln()).abs() < 1e-12);
        assert!(c.losses()[1].is_infinite());
        assert!((c.losses()[2] - 4f64.ln()).abs() < 1e-12);
        // For "1": γ_0(1) = P(frame 0 emits 1) = (p(11) + p(1∅)) / p = 2/3, so dz_0(1) =
        // 1/2 - 2/3 = -1/6 and dz_0(∅) = 1/6.
        let mut d = vec![0.0; z.len()];
        ctc_backward(&c, &[1.0, 1.0, 1.0], &mut d);
        assert!((d[1] + 1.0 / 6.0).abs() < 1e-12 && (d[0] - 1.0 / 6.0).abs() < 1e-12);
        // No frames: loss 0 without labels, +∞ with.
        ctc_forward(&[0.0f64; 0], 2, &[0, 0], &[1], &[0, 1], 0, &mut c);
        assert_eq!(c.losses(), &[0.0, f64::INFINITY]);
        assert_eq!(min_frames(&[1, 1, 2, 2, 2]), 8);
    }
}
