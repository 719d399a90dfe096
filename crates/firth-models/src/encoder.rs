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
//!
//! Final states. Each sequence's summary for a decoder is the state every layer and direction
//! reached at the end of *that* sequence: the forward direction's state at t = len_b - 1, and
//! the backward direction's after reading token 0, which is its own step len_b - 1 over the
//! reversed input. [`SeqEncoder::final_h`] / [`SeqEncoder::final_c`] gather them. Gradients
//! given for them ([`SeqEncoder::add_d_final`]) join the sweep at those same steps: a final h
//! is the layer's output there, so dL/dh adds to that step's output gradient; a final LSTM
//! cell is not an output, so dL/dc goes to the recurrent layer's per-step cell gradient
//! ([`Recurrent::add_d_cells`]).

use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::recurrent::Recurrent;
use firth_nn::{CellKind, Gemm, Param, ParamSet, Rng};
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
    /// Final states, (layers·dirs, B, H): block k·dirs + d is layer k, direction d (0 forward,
    /// 1 backward).
    final_h: Vec<T>,
    final_c: Vec<T>, // LSTM only, same layout
    /// Gradients given for the final states, for the next backward.
    d_final_h: Option<Vec<T>>, // (layers·dirs, B, H)
    d_final_c: Option<Vec<T>>, // (layers·dirs, B, H), LSTM only
    d_cells: Vec<T>, // (L, B, H) scratch
}

impl<T: Gemm> SeqEncoder<T> {
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
            final_h: Vec::new(),
            final_c: Vec::new(),
            d_final_h: None,
            d_final_c: None,
            d_cells: Vec::new(),
        }
    }

    fn dirs(&self) -> usize {
        if self.cfg.bidirectional {
            2
        } else {
            1
        }
    }

    /// The final hidden state of every layer and direction for each sequence at its own
    /// length, (layers·dirs, B, H): block k·dirs + d holds layer k's forward (d = 0) state
    /// after token len_b - 1, or its backward (d = 1) state after token 0.
    pub fn final_h(&self) -> &[T] {
        &self.final_h
    }

    /// The final LSTM cells, laid out like [`Self::final_h`]; empty for other cells.
    pub fn final_c(&self) -> &[T] {
        &self.final_c
    }

    /// Adds dL/d[`Self::final_h`] and, for an LSTM, dL/d[`Self::final_c`] (both
    /// (layers·dirs, B, H)) to what the next backward propagates, on top of its `d_out`.
    /// Cleared by that backward and by the next forward.
    pub fn add_d_final(&mut self, d_h: &[T], d_c: Option<&[T]>) {
        let n = self.layers.len() * self.dirs() * self.batch * self.cfg.hidden;
        assert_eq!(
            d_h.len(),
            n,
            "final-state gradient is not (layers·dirs, B, H)"
        );
        let pending = self.d_final_h.get_or_insert_with(|| vec![T::ZERO; n]);
        add(pending, d_h);
        if let Some(d_c) = d_c {
            assert_eq!(
                self.cfg.cell,
                CellKind::Lstm,
                "only an LSTM has a cell state"
            );
            assert_eq!(
                d_c.len(),
                n,
                "final-cell gradient is not (layers·dirs, B, H)"
            );
            add(self.d_final_c.get_or_insert_with(|| vec![T::ZERO; n]), d_c);
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
        self.d_final_h = None;
        self.d_final_c = None;
        let lstm = self.cfg.cell == CellKind::Lstm;
        let finals = self.layers.len() * dirs * batch * h;
        resize(&mut self.final_h, finals);
        resize(&mut self.final_c, if lstm { finals } else { 0 });
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
            layer
                .fwd
                .forward(input, steps, batch, &self.zeros, &self.zeros);
            let y = layer.fwd.output();
            let block = k * dirs * batch * h;
            gather_last(y, &mut self.final_h[block..], batch, lengths, h);
            if lstm {
                gather_last(
                    layer.fwd.cells(),
                    &mut self.final_c[block..],
                    batch,
                    lengths,
                    h,
                );
            }
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
                bwd.forward(&layer.rev_x, steps, batch, &self.zeros, &self.zeros);
                let y = bwd.output();
                let block = (k * dirs + 1) * batch * h;
                gather_last(y, &mut self.final_h[block..], batch, lengths, h);
                if lstm {
                    gather_last(bwd.cells(), &mut self.final_c[block..], batch, lengths, h);
                }
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

    /// d_out: (L, B, out_dim) (padded rows ignored), plus any final-state gradients given to
    /// [`Self::add_d_final`]; accumulates parameter grads and, if given, d_x (L, B, input)
    /// (+=; padded positions receive nothing). `x` must be the input of the last forward.
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
        let dirs = self.dirs();
        let d_final_h = self.d_final_h.take();
        let d_final_c = self.d_final_c.take();
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
            // A final h is the output at the sequence's step len_b - 1 (in the backward
            // direction's reversed time as well); its gradient joins that step's.
            if let Some(d) = &d_final_h {
                let block = k * dirs * batch * h;
                scatter_last_add(&d[block..], &mut self.dy_f, batch, lengths, h);
                if self.cfg.bidirectional {
                    let block = (k * dirs + 1) * batch * h;
                    scatter_last_add(&d[block..], &mut self.dy_b, batch, lengths, h);
                }
            }
            if let Some(d) = &d_final_c {
                resize(&mut self.d_cells, steps * batch * h);
                self.d_cells.fill(T::ZERO);
                let block = k * dirs * batch * h;
                scatter_last_add(&d[block..], &mut self.d_cells, batch, lengths, h);
                layer.fwd.add_d_cells(&self.d_cells);
                if let Some(bwd) = &mut layer.bwd {
                    self.d_cells.fill(T::ZERO);
                    let block = (k * dirs + 1) * batch * h;
                    scatter_last_add(&d[block..], &mut self.d_cells, batch, lengths, h);
                    bwd.add_d_cells(&self.d_cells);
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
            // Padded positions can receive nothing: they are skipped so that it is exact.
            let i_n = self.cfg.input;
            for t in 0..steps {
                for b in 0..batch {
                    if t < self.lengths[b] {
                        let at = (t * batch + b) * i_n;
                        add(&mut dx[at..][..i_n], &self.d_in[at..][..i_n]);
                    }
                }
            }
        }
    }
}

/// dst[t, b] = src[len_b - 1 - t, b] for t < len_b (or += when `add`), zero for padded rows
/// when not adding. Rows are `w` wide. The map is its own inverse.
fn reverse_rows<T: Gemm>(
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

/// dst (B, H) gets row (len_b - 1, b) of src (L, B, H) for each b.
fn gather_last<T: Gemm>(src: &[T], dst: &mut [T], batch: usize, lengths: &[usize], h: usize) {
    for (b, &n) in lengths.iter().enumerate() {
        dst[b * h..][..h].copy_from_slice(&src[((n - 1) * batch + b) * h..][..h]);
    }
}

/// The inverse of [`gather_last`], adding: row (len_b - 1, b) of dst (L, B, H) += src (B, H)
/// row b.
fn scatter_last_add<T: Gemm>(src: &[T], dst: &mut [T], batch: usize, lengths: &[usize], h: usize) {
    for (b, &n) in lengths.iter().enumerate() {
        add(
            &mut dst[((n - 1) * batch + b) * h..][..h],
            &src[b * h..][..h],
        );
    }
}

fn add<T: Gemm>(dst: &mut [T], src: &[T]) {
    for (a, &b) in dst.iter_mut().zip(src) {
        *a += b;
    }
}

fn resize<T: Gemm>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::ZERO);
    }
}

impl<T: Gemm> ParamSet<T> for SeqEncoder<T> {
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
