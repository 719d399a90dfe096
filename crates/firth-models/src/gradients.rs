//! Gradient flow through time: how strongly the loss at step t reaches back to the hidden
//! state at step k, ‖∂J⁽ᵗ⁾/∂h⁽ᵏ⁾‖, as a function of the distance d = t - k.
//!
//! The chain rule gives
//!
//!   ∂J⁽ᵗ⁾/∂h⁽ᵏ⁾ = (∂h⁽ᵏ⁺¹⁾/∂h⁽ᵏ⁾)ᵀ ··· (∂h⁽ᵗ⁾/∂h⁽ᵗ⁻¹⁾)ᵀ · ∂J⁽ᵗ⁾/∂h⁽ᵗ⁾,
//!
//! a product of d Jacobians. For an Elman RNN each factor is diag(1 - h²)·W_hᵀ, and when its
//! norm stays below 1 the product shrinks geometrically: the gradient *vanishes*. An LSTM's
//! cell path c⁽ᵏ⁺¹⁾ = f ⊙ c⁽ᵏ⁾ + … multiplies only by forget gates, which training keeps close
//! to 1, so the signal survives much further.
//!
//! What is measured: the hidden state h of the **top** recurrent layer (for an LSTM, h with the
//! cell c held fixed, i.e. the `dL/dh_t` that backpropagation carries), and for an LSTM also its
//! cell state c (‖∂J⁽ᵗ⁾/∂c⁽ᵏ⁾‖, with h⁽ᵏ⁾ = o ⊙ tanh(c⁽ᵏ⁾) following c; see
//! [`Recurrent::d_c_steps`]): the cell is the LSTM's memory, and the path the lecture credits
//! with keeping gradients alive. Gradients reaching the lower layers are not included. J⁽ᵗ⁾ = -ln p(w_{t+1} | w_≤t) is the loss of one
//! prediction. For each of many positions t of a text, the model reads the `warmup + D + 1`
//! tokens ending at w_t from a zero state (so the states at the distances measured have seen at
//! least `warmup` real tokens), the gradient of J⁽ᵗ⁾ alone is backpropagated, and the per-step
//! gradients dJ⁽ᵗ⁾/dh⁽ᵗ⁻ᵈ⁾ are read out of the top layer (see
//! [`Recurrent::set_record_dh`]). Columns of a batch are independent positions, so one backward
//! pass measures a whole batch. The result is the mean norm over positions, per distance.

use crate::lm::{Arch, LanguageModel};
use anyhow::{bail, Result};
use firth_nn::gemm::{gemm, Op, Out};
use firth_nn::linear::affine_forward;
use firth_nn::param::ParamSet;
use firth_nn::recurrent::{CellKind, Recurrent};
use firth_nn::{Gemm, Rng};
use serde::Serialize;

/// A copy of a recurrent language model's weights, wired to measure gradient flow.
pub struct GradientProbe<T> {
    pub arch: Arch,
    emb: Vec<T>, // (V, E)
    emb_dim: usize,
    layers: Vec<Recurrent<T>>,
    out_w: Vec<T>, // (V, H)
    out_b: Vec<T>, // (V)
    residual: bool,
    vocab: usize,
    hidden: usize,
    xs: Vec<Vec<T>>, // per stage (T, B, D): embeddings, then each layer's output
}

/// Mean gradient norm per distance, over `positions` predictions.
#[derive(Clone, Debug, Serialize)]
pub struct GradientFlow {
    /// `grad_norm[d]` = mean over positions of ‖∂J⁽ᵗ⁾/∂h⁽ᵗ⁻ᵈ⁾‖, d = 0..=max distance.
    pub grad_norm: Vec<f64>,
    /// For an LSTM, the same for the cell state: mean ‖∂J⁽ᵗ⁾/∂c⁽ᵗ⁻ᵈ⁾‖.
    pub cell_grad_norm: Option<Vec<f64>>,
    pub positions: usize,
    /// Mean J⁽ᵗ⁾ over the positions, nats.
    pub mean_loss: f64,
    /// Share of the top layer's hidden units with |h| > 0.99 over the states measured: a
    /// saturated tanh unit passes almost no gradient back (its derivative 1 - h² is near 0).
    pub saturated: f64,
}

impl GradientFlow {
    /// log10(norm at d=0 / norm at d): how many orders of magnitude the gradient lost.
    pub fn orders_lost(&self, d: usize) -> Option<f64> {
        let (a, b) = (*self.grad_norm.first()?, *self.grad_norm.get(d)?);
        (a > 0.0 && b > 0.0).then(|| (a / b).log10())
    }

    /// The cell-state measurement of an LSTM as a flow of its own (same positions and loss).
    pub fn cell(&self) -> Option<GradientFlow> {
        self.cell_grad_norm.as_ref().map(|c| GradientFlow {
            grad_norm: c.clone(),
            cell_grad_norm: None,
            positions: self.positions,
            mean_loss: self.mean_loss,
            saturated: self.saturated,
        })
    }

    /// `distance,grad_norm` rows.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("distance,grad_norm\n");
        for (d, g) in self.grad_norm.iter().enumerate() {
            s.push_str(&format!("{d},{g:.6e}\n"));
        }
        s
    }
}

impl<T: Gemm> GradientProbe<T> {
    /// Copies the weights of `model` (a recurrent model; the window model has no state to
    /// differentiate through time), converting them to `T`: measure in f64, because an RNN's
    /// gradient can fall below f32's smallest number within 50 steps.
    pub fn new<S: Gemm>(model: &LanguageModel<S>) -> Result<GradientProbe<T>> {
        let c = &model.config;
        let kind = match c.arch {
            Arch::Window => bail!(
                "a window model carries no hidden state through time; measure gradients of an rnn, lstm or gru model"
            ),
            Arch::Lstm => CellKind::Lstm,
            Arch::Gru => CellKind::Gru,
            Arch::Rnn if c.rnn_sigmoid => CellKind::RnnSigmoid,
            Arch::Rnn => CellKind::RnnTanh,
        };
        let params = model.params();
        let convert = |v: &[S]| -> Vec<T> { v.iter().map(|&x| T::from_f64(x.to_f64())).collect() };
        let find = |name: &str, len: usize| -> Result<Vec<T>> {
            match params.iter().find(|p| p.name == name) {
                Some(p) if p.value.len() == len => Ok(convert(&p.value)),
                Some(p) => bail!(
                    "parameter {name} has {} values, expected {len}; the model file does not match its config",
                    p.value.len()
                ),
                None => bail!("the model has no parameter {name}; is it a firth recurrent LM?"),
            }
        };
        let mut rng = Rng::new(0);
        let mut layers = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            let input = if l == 0 { c.emb } else { c.hidden };
            let name = format!("layer{l}");
            let mut r = Recurrent::new(&name, kind, input, c.hidden, 0.0, 0.0, &mut rng);
            let g = kind.gates() * c.hidden;
            r.w_x.value = find(&format!("{name}.w_x"), input * g)?;
            r.w_h.value = find(&format!("{name}.w_h"), c.hidden * g)?;
            r.b.value = find(&format!("{name}.b"), g)?;
            if let Some(bh) = &mut r.b_h {
                bh.value = find(&format!("{name}.b_h"), g)?;
            }
            layers.push(r);
        }
        if let Some(top) = layers.last_mut() {
            top.set_record_dh(true);
        }
        let emb = convert(&model.embedding.weight.value);
        let out_w = if params.iter().any(|p| p.name == "out.weight") {
            find("out.weight", c.vocab * c.hidden)?
        } else {
            emb.clone() // tied: the output layer is the embedding table (emb = hidden)
        };
        Ok(GradientProbe {
            arch: c.arch,
            emb,
            emb_dim: c.emb,
            layers,
            out_w,
            out_b: find("out.bias", c.vocab)?,
            residual: c.residual,
            vocab: c.vocab,
            hidden: c.hidden,
            xs: Vec::new(),
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Runs every layer over `ids` (T, B) from a zero state; `xs[l+1]` is layer l's output.
    fn forward(&mut self, ids: &[u32], steps: usize, batch: usize) {
        let (e, h) = (self.emb_dim, self.hidden);
        self.xs.resize(self.layers.len() + 1, Vec::new());
        let x0 = &mut self.xs[0];
        x0.clear();
        for &id in ids {
            let id = id as usize;
            x0.extend_from_slice(&self.emb[id * e..(id + 1) * e]);
        }
        let zeros = vec![T::ZERO; batch * h];
        for l in 0..self.layers.len() {
            let (head, tail) = self.xs.split_at_mut(l + 1);
            let y = self.layers[l].forward(&head[l], steps, batch, &zeros, &zeros);
            let out = &mut tail[0];
            out.clear();
            out.extend_from_slice(y);
            if self.residual && l > 0 {
                firth_nn::kernels::add_into(out, &head[l]);
            }
        }
    }

    /// J_b = -ln p(targets[b] | top state `h` (B, H) of column b). Returns the losses and,
    /// in `dh` (B, H), ∂J_b/∂h = W_outᵀ (softmax(z_b) - onehot(targets[b])), z_b = W_out h_b + b_out.
    fn output_loss(&self, top: &[T], targets: &[u32], dh: &mut [T]) -> Vec<f64> {
        let (v, h) = (self.vocab, self.hidden);
        let batch = targets.len();
        let mut z = vec![T::ZERO; batch * v]; // (B, V)
        affine_forward(top, &self.out_w, Some(&self.out_b), &mut z, h, v);
        let mut losses = Vec::with_capacity(batch);
        for (row, &y) in z.chunks_exact_mut(v).zip(targets) {
            let m = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, &a| m.max(a.to_f64()));
            let sum: f64 = row.iter().map(|&a| (a.to_f64() - m).exp()).sum();
            losses.push(m + sum.ln() - row[y as usize].to_f64());
            for a in row.iter_mut() {
                *a = T::from_f64((a.to_f64() - m).exp() / sum);
            }
            row[y as usize] -= T::ONE;
        }
        // (B, H) = (B, V)·(V, H)
        gemm(dh, Out::Set, &z, Op::N, &self.out_w, Op::N, batch, h, v);
        losses
    }

    /// For `ids` (T, B) — column b is a run of T tokens — and `targets` (B), the token after
    /// each column: the gradients ∂J_b/∂h_k of the top layer's states, (T, B, H), where J_b
    /// is the loss of predicting `targets[b]` after the last step, reading from a zero state;
    /// for an LSTM also ∂J_b/∂c_k (T, B, H) (empty otherwise). Also returns the losses J_b.
    pub fn gradients(
        &mut self,
        ids: &[u32],
        steps: usize,
        batch: usize,
        targets: &[u32],
    ) -> (Vec<T>, Vec<T>, Vec<f64>) {
        assert_eq!(ids.len(), steps * batch, "ids are not (T, B)");
        assert_eq!(targets.len(), batch, "one target per column");
        let h = self.hidden;
        let bh = batch * h;
        self.forward(ids, steps, batch);
        let stages = self.xs.len();
        let top = &self.xs[stages - 1][(steps - 1) * bh..];
        let mut dy = vec![T::ZERO; steps * bh]; // (T, B, H): only the last step feeds J
        let losses = self.output_loss(top, targets, &mut dy[(steps - 1) * bh..]);
        // A residual connection adds the layer's input to its output; ∂out/∂h = I, so the
        // gradient reaching h at the last step is the same dy.
        let l = self.layers.len() - 1;
        self.layers[l].backward(&self.xs[l], &dy, None);
        self.layers[l].zero_grad();
        let top = &self.layers[l];
        (top.d_h_steps().to_vec(), top.d_c_steps().to_vec(), losses)
    }

    /// Mean ‖∂J⁽ᵗ⁾/∂h⁽ᵗ⁻ᵈ⁾‖ for d = 0..=`max_distance` over `positions` positions t spread
    /// evenly over `ids`, `batch` at a time. Each window starts `warmup` tokens before the
    /// farthest state measured. `progress(done, total)` is called after each batch.
    pub fn measure(
        &mut self,
        ids: &[u32],
        max_distance: usize,
        warmup: usize,
        positions: usize,
        batch: usize,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<GradientFlow> {
        let steps = warmup + max_distance + 1;
        // Window [t+1-steps, t], target t+1.
        if ids.len() < steps + 1 || positions == 0 {
            bail!(
                "the text has {} tokens; measuring distances up to {max_distance} after {warmup} warm-up tokens needs at least {}. Use a longer --train file or a smaller --max-distance",
                ids.len(),
                steps + 1
            );
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.vocab) {
            bail!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.vocab
            );
        }
        let lo = steps - 1;
        let hi = ids.len() - 2; // last t with a target
        let positions = positions.min(hi - lo + 1);
        let starts: Vec<usize> = (0..positions)
            .map(|i| lo + (i * (hi - lo)) / (positions - 1).max(1))
            .collect();
        let h = self.hidden;
        let mut sum = vec![0.0f64; max_distance + 1];
        let mut cell_sum = vec![0.0f64; max_distance + 1];
        let mut has_cell = false;
        let mut loss = 0.0;
        let (mut sat, mut units) = (0usize, 0usize);
        let batch = batch.max(1);
        let mut done = 0;
        for chunk in starts.chunks(batch) {
            let b_n = chunk.len();
            let mut x = vec![0u32; steps * b_n];
            let mut y = Vec::with_capacity(b_n);
            for (b, &t) in chunk.iter().enumerate() {
                for s in 0..steps {
                    x[s * b_n + b] = ids[t + 1 - steps + s];
                }
                y.push(ids[t + 1]);
            }
            let (g, gc, losses) = self.gradients(&x, steps, b_n, &y);
            has_cell = !gc.is_empty();
            loss += losses.iter().sum::<f64>();
            let top = self.layers[self.layers.len() - 1].output(); // (T, B, H)
            let measured = &top[(steps - 1 - max_distance) * b_n * h..];
            sat += measured.iter().filter(|v| v.to_f64().abs() > 0.99).count();
            units += measured.len();
            let norm = |v: &[T]| {
                v.iter()
                    .map(|&a| a.to_f64() * a.to_f64())
                    .sum::<f64>()
                    .sqrt()
            };
            for d in 0..=max_distance {
                let k = steps - 1 - d;
                for b in 0..b_n {
                    let at = (k * b_n + b) * h..(k * b_n + b + 1) * h;
                    sum[d] += norm(&g[at.clone()]);
                    if has_cell {
                        cell_sum[d] += norm(&gc[at]);
                    }
                }
            }
            done += b_n;
            progress(done, positions);
        }
        Ok(GradientFlow {
            grad_norm: sum.iter().map(|s| s / positions as f64).collect(),
            cell_grad_norm: has_cell
                .then(|| cell_sum.iter().map(|s| s / positions as f64).collect()),
            positions,
            mean_loss: loss / positions as f64,
            saturated: sat as f64 / units.max(1) as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::LmConfig;
    use firth_nn::dropout::DropoutKind;
    use firth_nn::gradcheck::relative_error;
    use firth_text::Level;

    fn tiny(arch: Arch, layers: usize, residual: bool) -> LanguageModel<f64> {
        let config = LmConfig {
            arch,
            level: Level::Word,
            vocab: 7,
            emb: 4,
            hidden: 4,
            layers,
            dropout: 0.0,
            dropout_kind: DropoutKind::Standard,
            tied: false,
            residual,
            context: 0,
            init_range: 0.6,
            forget_bias: 0.0,
            rnn_sigmoid: false,
            reverse: false,
        };
        LanguageModel::new(config, &mut Rng::new(3)).unwrap()
    }

    /// J_b as a function of the top layer's state at step k: the lower layers run as usual,
    /// the top layer runs steps 0..=k, its state h_k (column b) is replaced by `h_k`, and it
    /// runs on from there with the same cell state — or, with `c_k`, its cell c_k is replaced
    /// and h_k = o_k ⊙ tanh(c_k) follows it (o_k recovered as h_k / tanh(c_k)).
    #[allow(clippy::too_many_arguments)]
    fn loss_from(
        probe: &mut GradientProbe<f64>,
        ids: &[u32],
        steps: usize,
        batch: usize,
        targets: &[u32],
        k: usize,
        col: usize,
        h_k: Option<&[f64]>,
        c_k: Option<&[f64]>,
    ) -> f64 {
        let h = probe.hidden;
        let bh = batch * h;
        probe.forward(ids, steps, batch);
        let l = probe.layers.len() - 1;
        let input = probe.xs[l].clone();
        let d = input.len() / (steps * batch);
        let zeros = vec![0.0; bh];
        let top = &mut probe.layers[l];
        top.forward(&input[..(k + 1) * batch * d], k + 1, batch, &zeros, &zeros);
        let mut state = top.last_h().to_vec();
        let mut cell = top.last_c().to_vec();
        let at = col * h..(col + 1) * h;
        if let Some(h_k) = h_k {
            state[at.clone()].copy_from_slice(h_k);
        }
        if let Some(c_k) = c_k {
            for j in at.clone() {
                let o = state[j] / cell[j].tanh();
                cell[j] = c_k[j - at.start];
                state[j] = o * cell[j].tanh();
            }
        }
        let last = if k + 1 < steps {
            top.forward(
                &input[(k + 1) * batch * d..],
                steps - k - 1,
                batch,
                &state,
                &cell,
            );
            top.last_h().to_vec()
        } else {
            state
        };
        let mut out = last;
        if probe.residual && l > 0 {
            for (o, &x) in out.iter_mut().zip(&input[(steps - 1) * batch * d..]) {
                *o += x;
            }
        }
        let mut dh = vec![0.0; bh];
        probe.output_loss(&out, targets, &mut dh)[col]
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (steps, batch) = (6, 2);
        let ids: Vec<u32> = vec![1, 4, 2, 6, 0, 3, 5, 5, 2, 1, 6, 4];
        let targets = [3u32, 0];
        for (arch, layers, residual) in [
            (Arch::Rnn, 1, false),
            (Arch::Lstm, 2, false),
            (Arch::Gru, 2, true),
            (Arch::Lstm, 1, false),
        ] {
            let model = tiny(arch, layers, residual);
            let mut probe = GradientProbe::<f64>::new(&model).unwrap();
            let (g, gc, losses) = probe.gradients(&ids, steps, batch, &targets);
            assert_eq!(gc.is_empty(), arch != Arch::Lstm);
            let h = probe.hidden;
            let mut worst: f64 = 0.0;
            for k in 0..steps {
                for col in 0..batch {
                    // The state h_k itself, from an unperturbed forward.
                    probe.forward(&ids, steps, batch);
                    let l = probe.layers.len() - 1;
                    let hk: Vec<f64> = {
                        let y = probe.layers[l].output();
                        y[(k * batch + col) * h..(k * batch + col + 1) * h].to_vec()
                    };
                    let j0 = loss_from(
                        &mut probe,
                        &ids,
                        steps,
                        batch,
                        &targets,
                        k,
                        col,
                        Some(&hk),
                        None,
                    );
                    assert!((j0 - losses[col]).abs() < 1e-9, "{arch:?}: loss differs");
                    let ck: Vec<f64> = if arch != Arch::Lstm {
                        Vec::new()
                    } else {
                        let top = &mut probe.layers[l];
                        let input = probe.xs[l].clone();
                        let d = input.len() / (steps * batch);
                        let zeros = vec![0.0; batch * h];
                        top.forward(&input[..(k + 1) * batch * d], k + 1, batch, &zeros, &zeros);
                        top.last_c()[col * h..(col + 1) * h].to_vec()
                    };
                    let eps = 1e-5;
                    let fd = |probe: &mut GradientProbe<f64>, i: usize, cell: bool| {
                        let base = if cell { &ck } else { &hk };
                        let mut p = base.clone();
                        let mut at = |x: f64, p: &mut Vec<f64>| {
                            p[i] = x;
                            let (hp, cp) = if cell {
                                (None, Some(&p[..]))
                            } else {
                                (Some(&p[..]), None)
                            };
                            loss_from(probe, &ids, steps, batch, &targets, k, col, hp, cp)
                        };
                        let lp = at(base[i] + eps, &mut p);
                        let lm = at(base[i] - eps, &mut p);
                        (lp - lm) / (2.0 * eps)
                    };
                    for i in 0..h {
                        let ana = g[(k * batch + col) * h + i];
                        worst = worst.max(relative_error(ana, fd(&mut probe, i, false)));
                        if arch == Arch::Lstm {
                            let ana = gc[(k * batch + col) * h + i];
                            worst = worst.max(relative_error(ana, fd(&mut probe, i, true)));
                        }
                    }
                }
            }
            assert!(worst < 1e-6, "{arch:?}: worst relative error {worst}");
        }
    }

    #[test]
    fn measure_averages_norms_per_distance() {
        let model = tiny(Arch::Lstm, 1, false);
        let mut probe = GradientProbe::<f64>::new(&model).unwrap();
        let ids: Vec<u32> = (0..40).map(|i| (i * 5 % 7) as u32).collect();
        let flow = probe.measure(&ids, 4, 2, 3, 2, |_, _| {}).unwrap();
        assert_eq!(flow.grad_norm.len(), 5);
        assert_eq!(flow.cell_grad_norm.as_ref().map(Vec::len), Some(5));
        assert_eq!(flow.positions, 3);
        // By hand: windows of 7 tokens ending at t = 6, 22, 38 (evenly from the first to the
        // last position with a target), each predicting ids[t+1].
        for (d, &mean) in flow.grad_norm.iter().enumerate() {
            let (mut sum, mut cell_sum) = (0.0, 0.0);
            let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
            for t in [6usize, 22, 38] {
                let (g, gc, _) = probe.gradients(&ids[t - 6..=t], 7, 1, &[ids[t + 1]]);
                let k = 6 - d;
                sum += norm(&g[k * 4..(k + 1) * 4]);
                cell_sum += norm(&gc[k * 4..(k + 1) * 4]);
            }
            assert!((sum / 3.0 - mean).abs() < 1e-12, "distance {d}");
            let cell = flow.cell_grad_norm.as_ref().unwrap()[d];
            assert!((cell_sum / 3.0 - cell).abs() < 1e-12, "cell, distance {d}");
            assert!(mean > 0.0);
        }
        let csv = flow.to_csv();
        assert!(csv.starts_with("distance,grad_norm\n0,"));
        assert_eq!(csv.lines().count(), 6);
        // Too short a text is an error, not a panic.
        assert!(probe.measure(&ids[..5], 4, 2, 3, 2, |_, _| {}).is_err());
    }
}
