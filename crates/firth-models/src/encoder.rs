//! A sequence encoder: stacked, optionally bidirectional RNN/LSTM/GRU layers over a padded
//! batch of sentences of different lengths.
//!
//! Input `x` is time-major (L, B, I) with `lengths[b]` real tokens in sequence b; positions
//! t ≥ lengths[b] are padding. Every layer runs a forward-direction [`Recurrent`] over the whole
//! padded batch, and, when bidirectional, a second one over the *reversed* batch: each sequence
//! is reversed within its own length into a scratch buffer,
//!
//! ```text
//! rev[t, b] = x[len_b - 1 - t, b]   for t < len_b,   0 otherwise,
//! ```
//!
//! so padding stays after the end in both directions and the backward direction starts from a
//! zero state at each sequence's own last token. Its outputs are un-reversed with the same
//! index map and concatenated after the forward ones: out[t, b] = [h→_t ; h←_t], (L, B, 2H).
//!
//! Because padding only follows a sequence, a recurrent state at a real position never reads a
//! padded one; the output rows at padded positions are set to zero, and their incoming
//! gradients are ignored (zeroed before the backward sweep), so padding contributes nothing to
//! any gradient either. A sequence's outputs are therefore independent of the padding and of
//! the other sequences in the batch.
//!
//! Dropout (inverted, a fresh mask per element) is applied to the input of every layer above
//! the first, like PyTorch's `nn.LSTM(dropout=p)`; callers apply their own dropout to the
//! encoder's input and output.
//!
//! Backward. With y = [y→ ; y←] the gradient splits into dy→ = dOut[..., :H] and
//! dy← = dOut[..., H:]. The forward direction's backward takes dy→ as is. The backward
//! direction ran on rev(x) and produced rev(y←), so it takes rev(dy←) and returns
//! d rev(x), which un-reverses into dx (the map is a permutation of the real positions, so
//! the gradient is moved, not summed). The two input gradients add, and the dropout mask of
//! the layer's input multiplies the sum before it becomes the output gradient of the layer
//! below.

use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::recurrent::Recurrent;
use firth_nn::{CellKind, Param, ParamSet, Real, Rng};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    pub cell: CellKind,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bidirectional: bool,
    /// Dropout on the input of every layer above the first.
    pub dropout: f32,
}

#[derive(Clone, Debug)]
struct Layer<T> {
    fwd: Recurrent<T>,
    bwd: Option<Recurrent<T>>,
    /// Dropout on this layer's input (inactive for layer 0).
    drop: Dropout<T>,
    input: usize,
    /// This layer's input as the recurrent layers saw it, (L, B, I_l); unused for layer 0,
    /// whose input is the caller's `x`.
    x: Vec<T>,
    /// The input reversed within each sequence, (L, B, I_l); bidirectional only.
    rev_x: Vec<T>,
    /// Output, (L, B, dirs·H), padded rows zero.
    out: Vec<T>,
}

/// Stacked (bi)directional recurrent encoder; see the module documentation.
#[derive(Clone, Debug)]
pub struct SeqEncoder<T> {
    pub cfg: EncoderConfig,
    layers: Vec<Layer<T>>,
    steps: usize,
    batch: usize,
    lengths: Vec<usize>,
    zeros: Vec<T>, // (B, H) initial states
    dy_f: Vec<T>,  // (L, B, H) scratch
    dy_b: Vec<T>,  // (L, B, H) scratch, reversed order
    d_in: Vec<T>,  // (L, B, I_l) scratch: gradient w.r.t. a layer's input
    d_rev: Vec<T>, // (L, B, I_l) scratch: gradient w.r.t. the reversed input
    d_out: Vec<T>, // (L, B, dirs·H) gradient w.r.t. the current layer's output
}

impl<T: Real> SeqEncoder<T> {
    /// Parameters are named `encoder.l{k}.fwd.*` / `encoder.l{k}.bwd.*`.
    pub fn new(cfg: &EncoderConfig, init_range: f64, rng: &mut Rng) -> Self {
        Self::with_name("encoder", cfg, init_range, rng)
    }

    /// Like [`Self::new`] with a parameter-name prefix, for models holding several encoders
    /// (e.g. a word encoder and a character encoder).
    pub fn with_name(name: &str, cfg: &EncoderConfig, init_range: f64, rng: &mut Rng) -> Self {
        assert!(cfg.layers >= 1, "an encoder needs at least one layer");
        let dirs = if cfg.bidirectional { 2 } else { 1 };
        let layers = (0..cfg.layers)
            .map(|k| {
                let input = if k == 0 { cfg.input } else { cfg.hidden * dirs };
                // LSTM forget-gate bias 1 (Jozefowicz et al. 2015).
                let mk = |dir: &str, rng: &mut Rng| {
                    Recurrent::new(
                        &format!("{name}.l{k}.{dir}"),
                        cfg.cell,
                        input,
                        cfg.hidden,
                        init_range,
                        1.0,
                        rng,
                    )
                };
                let fwd = mk("fwd", rng);
                let bwd = cfg.bidirectional.then(|| mk("bwd", rng));
                let p = if k == 0 { 0.0 } else { cfg.dropout as f64 };
                Layer {
                    fwd,
                    bwd,
                    drop: Dropout::new(p, DropoutKind::Standard),
                    input,
                    x: Vec::new(),
                    rev_x: Vec::new(),
                    out: Vec::new(),
                }
            })
            .collect();
        SeqEncoder {
            cfg: cfg.clone(),
            layers,
            steps: 0,
            batch: 0,
            lengths: Vec::new(),
            zeros: Vec::new(),
            dy_f: Vec::new(),
            dy_b: Vec::new(),
            d_in: Vec::new(),
            d_rev: Vec::new(),
            d_out: Vec::new(),
        }
    }

    pub fn out_dim(&self) -> usize {
        self.cfg.hidden * if self.cfg.bidirectional { 2 } else { 1 }
    }

    /// Output of the last forward, (L, B, out_dim).
    pub fn output(&self) -> &[T] {
        &self.layers.last().expect("at least one layer").out
    }

    /// x: (L, B, input) time-major, lengths: (B) with 1 <= len <= L; padding only after each
    /// sequence's end. Returns (L, B, out_dim); rows at padded positions are zero.
    /// The backward direction of a bidirectional layer starts at each sequence's own last token.
    pub fn forward(
        &mut self,
        x: &[T],
        steps: usize,
        batch: usize,
        lengths: &[usize],
        train: bool,
        rng: &mut Rng,
    ) -> &[T] {
        assert_eq!(
            x.len(),
            steps * batch * self.cfg.input,
            "encoder input is not (L, B, I)"
        );
        assert_eq!(lengths.len(), batch, "encoder lengths are not (B)");
        assert!(
            lengths.iter().all(|&n| n >= 1 && n <= steps),
            "encoder lengths must be in 1..=L"
        );
        self.steps = steps;
        self.batch = batch;
        self.lengths.clear();
        self.lengths.extend_from_slice(lengths);
        let h = self.cfg.hidden;
        let dirs = if self.cfg.bidirectional { 2 } else { 1 };
        let od = h * dirs;
        self.zeros.clear();
        self.zeros.resize(batch * h, T::ZERO);
        for k in 0..self.layers.len() {
            let (below, rest) = self.layers.split_at_mut(k);
            let layer = &mut rest[0];
            let i_n = layer.input;
            let input: &[T] = if k == 0 {
                x
            } else {
                let prev = &below[k - 1].out;
                layer.x.clear();
                layer.x.extend_from_slice(prev);
                layer.drop.forward(&mut layer.x, batch * i_n, train, rng);
                &layer.x
            };
            resize(&mut layer.out, steps * batch * od);
            let y = layer
                .fwd
                .forward(input, steps, batch, &self.zeros, &self.zeros);
            for t in 0..steps {
                for b in 0..batch {
                    let dst = &mut layer.out[(t * batch + b) * od..][..h];
                    if t < lengths[b] {
                        dst.copy_from_slice(&y[(t * batch + b) * h..][..h]);
                    } else {
                        dst.fill(T::ZERO);
                    }
                }
            }
            if let Some(bwd) = &mut layer.bwd {
                resize(&mut layer.rev_x, steps * batch * i_n);
                reverse_rows(input, &mut layer.rev_x, steps, batch, lengths, i_n, false);
                let y = bwd.forward(&layer.rev_x, steps, batch, &self.zeros, &self.zeros);
                for t in 0..steps {
                    for b in 0..batch {
                        let dst = &mut layer.out[(t * batch + b) * od + h..][..h];
                        let n = lengths[b];
                        if t < n {
                            dst.copy_from_slice(&y[((n - 1 - t) * batch + b) * h..][..h]);
                        } else {
                            dst.fill(T::ZERO);
                        }
                    }
                }
            }
        }
        self.output()
    }

    /// d_out: (L, B, out_dim) (padded rows ignored); accumulates parameter grads (+=);
    /// writes (overwrites) d_x (L, B, input) if given, zero at padded positions.
    /// `x` must be the input of the last forward.
    pub fn backward(&mut self, x: &[T], d_out: &[T], d_x: Option<&mut [T]>) {
        let (steps, batch) = (self.steps, self.batch);
        let h = self.cfg.hidden;
        let od = self.out_dim();
        assert_eq!(
            d_out.len(),
            steps * batch * od,
            "encoder d_out is not (L, B, out_dim)"
        );
        assert_eq!(
            x.len(),
            steps * batch * self.cfg.input,
            "encoder input is not (L, B, I)"
        );
        self.d_out.clear();
        self.d_out.extend_from_slice(d_out);
        let lengths = &self.lengths;
        resize(&mut self.dy_f, steps * batch * h);
        if self.cfg.bidirectional {
            resize(&mut self.dy_b, steps * batch * h);
        }
        let need_dx = d_x.is_some();
        for k in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[k];
            let i_n = layer.input;
            // Split the output gradient by direction, zeroing padded rows; the backward
            // direction's part goes to its reversed positions.
            for t in 0..steps {
                for b in 0..batch {
                    let row = &self.d_out[(t * batch + b) * od..][..od];
                    let n = lengths[b];
                    let f = &mut self.dy_f[(t * batch + b) * h..][..h];
                    if t < n {
                        f.copy_from_slice(&row[..h]);
                    } else {
                        f.fill(T::ZERO);
                    }
                    if self.cfg.bidirectional {
                        // dy_b at reversed position t takes the gradient of original n-1-t.
                        let r = &mut self.dy_b[(t * batch + b) * h..][..h];
                        if t < n {
                            let src = &self.d_out[((n - 1 - t) * batch + b) * od + h..][..h];
                            r.copy_from_slice(src);
                        } else {
                            r.fill(T::ZERO);
                        }
                    }
                }
            }
            let input: &[T] = if k == 0 { x } else { &layer.x };
            let want_dx = k > 0 || need_dx;
            resize(&mut self.d_in, steps * batch * i_n);
            self.d_in.fill(T::ZERO);
            layer.fwd.backward(
                input,
                &self.dy_f,
                if want_dx { Some(&mut self.d_in) } else { None },
            );
            if let Some(bwd) = &mut layer.bwd {
                resize(&mut self.d_rev, steps * batch * i_n);
                self.d_rev.fill(T::ZERO);
                bwd.backward(
                    &layer.rev_x,
                    &self.dy_b,
                    if want_dx { Some(&mut self.d_rev) } else { None },
                );
                if want_dx {
                    // Un-reverse and add: d_in[n-1-t] += d_rev[t].
                    reverse_rows(
                        &self.d_rev,
                        &mut self.d_in,
                        steps,
                        batch,
                        lengths,
                        i_n,
                        true,
                    );
                }
            }
            if k > 0 {
                layer.drop.backward(&mut self.d_in);
                std::mem::swap(&mut self.d_out, &mut self.d_in);
            }
        }
        if let Some(dx) = d_x {
            assert_eq!(dx.len(), x.len(), "encoder d_x is not (L, B, I)");
            dx.copy_from_slice(&self.d_in);
            // Padded positions can receive nothing, but make it exact.
            let i_n = self.cfg.input;
            for t in 0..steps {
                for b in 0..batch {
                    if t >= self.lengths[b] {
                        dx[(t * batch + b) * i_n..][..i_n].fill(T::ZERO);
                    }
                }
            }
        }
    }
}

/// dst[t, b] = src[len_b - 1 - t, b] for t < len_b (or += when `add`), zero for padded rows
/// when not adding. Rows are `w` wide. The map is its own inverse.
fn reverse_rows<T: Real>(
    src: &[T],
    dst: &mut [T],
    steps: usize,
    batch: usize,
    lengths: &[usize],
    w: usize,
    add: bool,
) {
    for t in 0..steps {
        for b in 0..batch {
            let n = lengths[b];
            let d = &mut dst[(t * batch + b) * w..][..w];
            if t < n {
                let s = &src[((n - 1 - t) * batch + b) * w..][..w];
                if add {
                    for (a, &v) in d.iter_mut().zip(s) {
                        *a += v;
                    }
                } else {
                    d.copy_from_slice(s);
                }
            } else if !add {
                d.fill(T::ZERO);
            }
        }
    }
}

fn resize<T: Real>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::ZERO);
    }
}

impl<T: Real> ParamSet<T> for SeqEncoder<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = Vec::new();
        for l in &self.layers {
            v.extend(l.fwd.params());
            if let Some(b) = &l.bwd {
                v.extend(b.params());
            }
        }
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = Vec::new();
        for l in &mut self.layers {
            v.extend(l.fwd.params_mut());
            if let Some(b) = &mut l.bwd {
                v.extend(b.params_mut());
            }
        }
        v
    }
}
