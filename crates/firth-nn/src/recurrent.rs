//! One recurrent layer, one direction: Elman RNN (tanh or σ), LSTM or GRU.
//!
//! The fast path has three parts. Forward: one GEMM projects the inputs of all T steps at once
//! (`x·W_x + b`, (T·B, I)×(I, G·H)); then each step does one small GEMM `h_{t-1}·W_h` and one
//! fused gate kernel ([`crate::kernels`]). Backward: the sweep from t = T-1 down to 0 runs the
//! fused gate-gradient kernel and one small GEMM `dG_t·W_hᵀ` per step, and stores every dG_t;
//! after the sweep one GEMM each gives dW_x = Xᵀ·dG, dW_h = H_prevᵀ·dG and dX = dG·W_xᵀ.
//! The per-step products have only B rows; when that is few, W_h (and for the backward sweep
//! W_hᵀ) is packed once per pass for the few-row kernel ([`crate::few_rows`]).
//!
//! Weights are stored input-major, `W_x` (I, G·H) and `W_h` (H, G·H), so the per-step forward
//! product is a plain NN GEMM. Gates are laid out in blocks of H: LSTM (i, f, g, o), GRU (r, z, n).
//!
//! A decoder whose next input depends on its last output cannot give all T inputs up front; it
//! runs [`Recurrent::begin`] and then [`Recurrent::step`] once per step, which append to the same
//! caches [`Recurrent::forward`] fills (projecting each step's input on its own), so the one
//! backward sweep serves both ([`Recurrent::backward_steps`]). A loss that reads the final
//! state h_T (and c_T), e.g. an encoder whose last state starts a decoder, hands dL/dh_T to
//! [`Recurrent::add_d_final`] before the backward; the sweep then starts from it instead of
//! from zero.

use crate::gemm::{gemm, gemm_packed, pack_rhs, pack_rhs_upto, Gemm, Op, Out};
use crate::kernels;
use crate::param::{Param, ParamSet};
use crate::Rng;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellKind {
    /// Elman RNN, h = tanh(W_x x + W_h h + b).
    #[cfg_attr(feature = "clap", value(name = "rnn", alias = "rnn-tanh"))]
    RnnTanh,
    /// The lecture's form, h = σ(W_x x + W_h h + b).
    RnnSigmoid,
    Lstm,
    Gru,
}

impl CellKind {
    /// Gate blocks per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnSigmoid => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// A recurrent layer with the activations of its last forward pass.
#[derive(Clone, Debug)]
pub struct Recurrent<T> {
    pub kind: CellKind,
    pub input: usize,
    pub hidden: usize,
    pub w_x: Param<T>, // (I, G·H)
    pub w_h: Param<T>, // (H, G·H)
    pub b: Param<T>,   // (G·H)
    /// GRU only: the recurrent-side bias, which sits inside r ⊙ (W_hn h + b_hn).
    pub b_h: Option<Param<T>>, // (3H)
    steps: usize,
    batch: usize,
    gates: Vec<T>,  // (T, B, G·H) pre-activations, then activations
    h: Vec<T>,      // (T+1, B, H), h[0] = h0
    c: Vec<T>,      // (T+1, B, H), LSTM only, c[0] = c0
    tanh_c: Vec<T>, // (T, B, H), LSTM only
    hn: Vec<T>,     // (T, B, H), GRU only: W_hn h + b_hn
    hp: Vec<T>,     // (B, G·H) scratch for h_{t-1}·W_h
    /// W_h (forward) or W_hᵀ (backward) packed for the per-step products, when
    /// [`crate::gemm::pack_rhs`] finds that it pays.
    w_h_packed: Vec<T>,
    dgates: Vec<T>, // (T, B, G·H)
    dgh: Vec<T>,    // (T, B, 3H), GRU only: recurrent-side gate gradients
    dh: Vec<T>,     // (B, H) gradient reaching h_t from step t+1; after backward, dL/dh0
    dc: Vec<T>,     // (B, H) likewise for c; after backward, dL/dc0
    dh_tot: Vec<T>, // (B, H) scratch
    /// dL/dh_T given by [`Self::add_d_final`] for the next backward; `None` when no loss reads
    /// the final state.
    d_final_h: Option<Vec<T>>, // (B, H)
    /// LSTM: gradients into the cells c_1..c_T from outside the layer ([`Self::add_d_cells`],
    /// [`Self::add_d_final`]) for the next backward; `None` when there are none.
    d_cells: Option<Vec<T>>, // (T, B, H)
    /// The inputs of the steps taken since [`Self::begin`], (T, B, I).
    x_steps: Vec<T>,
    /// When set, backward keeps every step's total dL/dh_t in `dh_steps` (for gradient-flow
    /// measurements; off in training).
    record_dh: bool,
    dh_steps: Vec<T>, // (T, B, H), only while `record_dh`
    dc_steps: Vec<T>, // (T, B, H), only while `record_dh` (LSTM)
    /// The cell gradients of the backward in progress (taken from `d_cells`).
    sweep_cells: Option<Vec<T>>,
    /// W_hᵀ is packed in `w_h_packed` for the backward in progress.
    sweep_packed: bool,
    /// Steps not yet backpropagated by a step-wise backward.
    sweep_t: usize,
    /// Step-wise passes ([`Self::begin_packed`]): W_x and W_h packed once for every step's
    /// products, and W_xᵀ for the step-wise backward's input gradients.
    step_wx_packed: Vec<T>,
    step_wh_packed: Vec<T>,
    step_packed: bool,
    step_wxt_packed: Vec<T>,
    step_wxt: bool,
}

/// Which packed W_h a step's recurrent product reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Packed {
    No,
    /// `w_h_packed`, packed by [`Recurrent::forward`].
    Pass,
    /// `step_wh_packed`, packed by [`Recurrent::begin_packed`].
    Steps,
}

/// Step-wise products take the few-row kernel up to this many rows: their weights are large
/// (a decoder's (768, 2048)), which the general GEMM repacks on every call.
const STEP_MAX_ROWS: usize = 128;

impl<T: Gemm> Recurrent<T> {
    /// Weights uniform in ±`init_range` (Zaremba et al. use 0.1; PyTorch's default is 1/√H).
    /// `forget_bias` is added to the LSTM forget-gate bias (1.0 helps long memories early on).
    pub fn new(
        name: &str,
        kind: CellKind,
        input: usize,
        hidden: usize,
        init_range: f64,
        forget_bias: f64,
        rng: &mut Rng,
    ) -> Self {
        let g = kind.gates() * hidden;
        let w_x = Param::uniform(&format!("{name}.w_x"), &[input, g], init_range, rng);
        let w_h = Param::uniform(&format!("{name}.w_h"), &[hidden, g], init_range, rng);
        let mut b = Param::uniform(&format!("{name}.b"), &[g], init_range, rng);
        if kind == CellKind::Lstm {
            for v in &mut b.value[hidden..2 * hidden] {
                *v += T::from_f64(forget_bias);
            }
        }
        let b_h = (kind == CellKind::Gru)
            .then(|| Param::uniform(&format!("{name}.b_h"), &[g], init_range, rng));
        Recurrent {
            kind,
            input,
            hidden,
            w_x,
            w_h,
            b,
            b_h,
            steps: 0,
            batch: 0,
            gates: Vec::new(),
            h: Vec::new(),
            c: Vec::new(),
            tanh_c: Vec::new(),
            hn: Vec::new(),
            hp: Vec::new(),
            w_h_packed: Vec::new(),
            dgates: Vec::new(),
            dgh: Vec::new(),
            dh: Vec::new(),
            dc: Vec::new(),
            dh_tot: Vec::new(),
            d_final_h: None,
            d_cells: None,
            x_steps: Vec::new(),
            record_dh: false,
            dh_steps: Vec::new(),
            dc_steps: Vec::new(),
            sweep_cells: None,
            sweep_packed: false,
            sweep_t: 0,
            step_wx_packed: Vec::new(),
            step_wh_packed: Vec::new(),
            step_packed: false,
            step_wxt_packed: Vec::new(),
            step_wxt: false,
        }
    }

    /// Makes [`Self::backward`] keep dL/dh_t for every step (see [`Self::d_h_steps`]). Costs one
    /// (B, H) copy per step; training leaves it off.
    pub fn set_record_dh(&mut self, on: bool) {
        self.record_dh = on;
        if !on {
            self.dh_steps = Vec::new();
            self.dc_steps = Vec::new();
        }
    }

    /// After a backward with recording on: the total gradient reaching each hidden state,
    /// dL/dh_t = dy_t + what flows back from step t+1 through W_h (for an LSTM, from both h_{t+1}
    /// and c_{t+1}, with c_t itself held fixed), (T, B, H).
    pub fn d_h_steps(&self) -> &[T] {
        &self.dh_steps
    }

    /// After a backward with recording on, for an LSTM: the total gradient reaching each cell
    /// state, (T, B, H). The cell c_t feeds h_t = o_t ⊙ tanh(c_t) and c_{t+1} = f_{t+1} ⊙ c_t + …,
    /// so dL/dc_t = dL/dh_t ⊙ o_t ⊙ (1 - tanh²c_t) + f_{t+1} ⊙ dL/dc_{t+1}: the second term is
    /// the additive path that only multiplies by forget gates. Empty for other cells.
    pub fn d_c_steps(&self) -> &[T] {
        &self.dc_steps
    }

    fn gate_width(&self) -> usize {
        self.kind.gates() * self.hidden
    }

    /// Runs T steps over `x` (T, B, I) from the state (`h0`, `c0`), each (B, H); `c0` is read
    /// only by an LSTM. Returns the hidden states (T, B, H).
    pub fn forward(&mut self, x: &[T], steps: usize, batch: usize, h0: &[T], c0: &[T]) -> &[T] {
        let (t_n, b_n, h_n, g_n) = (steps, batch, self.hidden, self.gate_width());
        assert_eq!(
            x.len(),
            t_n * b_n * self.input,
            "recurrent input is not (T, B, I)"
        );
        self.start(batch, steps, h0, c0);
        // (T·B, G·H) = (T·B, I)·(I, G·H), then + b
        gemm(
            &mut self.gates,
            Out::Set,
            x,
            Op::N,
            &self.w_x.value,
            Op::N,
            t_n * b_n,
            g_n,
            self.input,
        );
        kernels::add_bias(&mut self.gates, &self.b.value);
        let packed = pack_rhs(
            &self.w_h.value,
            Op::N,
            h_n,
            g_n,
            b_n,
            t_n,
            &mut self.w_h_packed,
        );
        let packed = if packed { Packed::Pass } else { Packed::No };
        for t in 0..t_n {
            self.recur(t, packed);
        }
        &self.h[b_n * h_n..]
    }

    /// Starts a step-wise pass of `batch` sequences from (`h0`, `c0`), each (B, H); `c0` is read
    /// only by an LSTM. Then each [`Self::step`] takes one step, and [`Self::backward_steps`]
    /// backpropagates through all of them.
    pub fn begin(&mut self, batch: usize, h0: &[T], c0: &[T]) {
        self.start(batch, 0, h0, c0);
        self.step_packed = false;
    }

    /// [`Self::begin`] for a pass of about `steps` steps: packs W_x and W_h once for the
    /// steps' products where the few-row kernel pays ([`crate::gemm::pack_rhs_upto`]). The
    /// weights must not change until the pass (and its backward) is over.
    pub fn begin_packed(&mut self, batch: usize, h0: &[T], c0: &[T], steps: usize) {
        self.start(batch, 0, h0, c0);
        let g_n = self.gate_width();
        self.step_packed = pack_rhs_upto(
            &self.w_x.value,
            Op::N,
            self.input,
            g_n,
            batch,
            steps,
            STEP_MAX_ROWS,
            &mut self.step_wx_packed,
        ) && pack_rhs_upto(
            &self.w_h.value,
            Op::N,
            self.hidden,
            g_n,
            batch,
            steps,
            STEP_MAX_ROWS,
            &mut self.step_wh_packed,
        );
    }

    /// One step after [`Self::begin`] (or after the previous step): h_t = cell(x_t, h_{t-1})
    /// for x_t (B, I). Returns h_t (B, H). The step is cached exactly like step t of
    /// [`Self::forward`], so T steps followed by [`Self::backward_steps`] give what
    /// [`Self::forward`] over the same inputs followed by [`Self::backward`] gives.
    pub fn step(&mut self, x_t: &[T]) -> &[T] {
        let (b_n, h_n, g_n) = (self.batch, self.hidden, self.gate_width());
        assert_eq!(x_t.len(), b_n * self.input, "step input is not (B, I)");
        let t = self.steps;
        self.steps += 1;
        self.size_caches(t + 1);
        self.x_steps.extend_from_slice(x_t);
        let bg = b_n * g_n;
        let gates = &mut self.gates[t * bg..];
        // (B, G·H) = (B, I)·(I, G·H), then + b
        if self.step_packed {
            gemm_packed(
                gates,
                Out::Set,
                x_t,
                &self.step_wx_packed,
                b_n,
                g_n,
                self.input,
            );
        } else {
            gemm(
                gates,
                Out::Set,
                x_t,
                Op::N,
                &self.w_x.value,
                Op::N,
                b_n,
                g_n,
                self.input,
            );
        }
        kernels::add_bias(gates, &self.b.value);
        // W_h is packed only by begin_packed, into a buffer of its own: the backward sweep
        // repacks `w_h_packed` as W_hᵀ between steps of a decoder that trains as it goes.
        let packed = if self.step_packed {
            Packed::Steps
        } else {
            Packed::No
        };
        self.recur(t, packed);
        &self.h[(t + 1) * b_n * h_n..]
    }

    /// Sets the batch, sizes the caches for `steps` steps and stores the initial state;
    /// forgets any pending [`Self::add_d_final`] / [`Self::add_d_cells`].
    fn start(&mut self, batch: usize, steps: usize, h0: &[T], c0: &[T]) {
        let bh = batch * self.hidden;
        assert_eq!(h0.len(), bh, "initial state is not (B, H)");
        self.batch = batch;
        self.steps = steps;
        self.d_final_h = None;
        self.d_cells = None;
        self.x_steps.clear();
        let g_n = self.gate_width();
        resize(&mut self.hp, batch * g_n);
        self.size_caches(steps);
        self.h[..bh].copy_from_slice(h0);
        if self.kind == CellKind::Lstm {
            assert_eq!(c0.len(), bh, "initial cell is not (B, H)");
            self.c[..bh].copy_from_slice(c0);
        }
    }

    /// Sizes the per-step caches for `steps` steps, keeping h_0 (and c_0) and every step
    /// already taken.
    fn size_caches(&mut self, steps: usize) {
        let bh = self.batch * self.hidden;
        let bg = self.batch * self.gate_width();
        resize(&mut self.gates, steps * bg);
        resize(&mut self.h, (steps + 1) * bh);
        if self.kind == CellKind::Lstm {
            resize(&mut self.c, (steps + 1) * bh);
            resize(&mut self.tanh_c, steps * bh);
        }
        if self.kind == CellKind::Gru {
            resize(&mut self.hn, steps * bh);
        }
    }

    /// The recurrence of step t, on gates that already hold x_t·W_x + b: adds h_{t-1}·W_h and
    /// runs the cell, writing h_t (and c_t). `packed`: W_h is in `w_h_packed`.
    fn recur(&mut self, t: usize, packed: Packed) {
        let (b_n, h_n, g_n) = (self.batch, self.hidden, self.gate_width());
        let (bh, bg) = (b_n * h_n, b_n * g_n);
        {
            let (h_past, h_next) = self.h.split_at_mut((t + 1) * bh);
            let h_prev = &h_past[t * bh..];
            let h_t = &mut h_next[..bh];
            // (B, G·H) = (B, H)·(H, G·H)
            if packed != Packed::No {
                let w = if packed == Packed::Pass {
                    &self.w_h_packed
                } else {
                    &self.step_wh_packed
                };
                gemm_packed(&mut self.hp, Out::Set, h_prev, w, b_n, g_n, h_n);
            } else {
                gemm(
                    &mut self.hp,
                    Out::Set,
                    h_prev,
                    Op::N,
                    &self.w_h.value,
                    Op::N,
                    b_n,
                    g_n,
                    h_n,
                );
            }
            let gates = &mut self.gates[t * bg..(t + 1) * bg];
            match self.kind {
                CellKind::Lstm => {
                    let (c_past, c_next) = self.c.split_at_mut((t + 1) * bh);
                    kernels::lstm_forward(
                        gates,
                        &self.hp,
                        &c_past[t * bh..],
                        &mut c_next[..bh],
                        &mut self.tanh_c[t * bh..(t + 1) * bh],
                        h_t,
                        h_n,
                    );
                }
                CellKind::Gru => kernels::gru_forward(
                    gates,
                    &self.hp,
                    &self.b_h.as_ref().expect("GRU has b_h").value,
                    h_prev,
                    &mut self.hn[t * bh..(t + 1) * bh],
                    h_t,
                    h_n,
                ),
                CellKind::RnnTanh | CellKind::RnnSigmoid => {
                    kernels::rnn_forward(gates, &self.hp, h_t, self.kind == CellKind::RnnSigmoid)
                }
            }
        }
    }

    /// Hidden states of the last forward, (T, B, H).
    pub fn output(&self) -> &[T] {
        &self.h[self.batch * self.hidden..]
    }

    /// The state after the last step: h_T (B, H).
    pub fn last_h(&self) -> &[T] {
        &self.h[self.steps * self.batch * self.hidden..]
    }

    /// The LSTM cell after the last step, c_T (B, H); empty for other cells.
    pub fn last_c(&self) -> &[T] {
        if self.kind == CellKind::Lstm {
            &self.c[self.steps * self.batch * self.hidden..]
        } else {
            &[]
        }
    }

    /// Backpropagates `dy` (T, B, H), the gradient of the loss w.r.t. the outputs of the last
    /// forward (which must have been run on the same `x`). Adds parameter gradients into the
    /// `grad` buffers and, if given, the input gradient into `dx` (T, B, I). Gradient flows in
    /// from beyond step T only as given to [`Self::add_d_final`] since the forward (otherwise
    /// none: truncated BPTT); the gradient reaching the initial state is left in
    /// [`Self::d_h0`] / [`Self::d_c0`].
    pub fn backward(&mut self, x: &[T], dy: &[T], dx: Option<&mut [T]>) {
        let (t_n, b_n, h_n) = (self.steps, self.batch, self.hidden);
        let bh = b_n * h_n;
        assert_eq!(dy.len(), t_n * bh, "output gradient is not (T, B, H)");
        assert_eq!(
            x.len(),
            t_n * b_n * self.input,
            "recurrent input is not that of the last forward or steps"
        );
        self.sweep_start();
        for t in (0..t_n).rev() {
            self.sweep_step(t, &dy[t * bh..(t + 1) * bh]);
        }
        self.sweep_weights(x, dx);
    }

    /// Sizes the backward buffers, sets the sweep's starting gradient (dL/dh_T from
    /// [`Self::add_d_final`], else zero), takes the pending cell gradients and packs W_hᵀ
    /// when that pays.
    fn sweep_start(&mut self) {
        let (t_n, b_n, h_n, g_n) = (self.steps, self.batch, self.hidden, self.gate_width());
        let (bh, bg) = (b_n * h_n, b_n * g_n);
        resize(&mut self.dgates, t_n * bg);
        resize(&mut self.dh, bh);
        resize(&mut self.dh_tot, bh);
        resize(
            &mut self.dc,
            if self.kind == CellKind::Lstm { bh } else { 0 },
        );
        // The sweep starts from dL/dh_T: zero unless a loss reads the final state.
        match self.d_final_h.take() {
            Some(d) => self.dh.copy_from_slice(&d),
            None => self.dh.fill(T::ZERO),
        }
        self.dc.fill(T::ZERO);
        self.sweep_cells = self.d_cells.take();
        if let Some(d) = &self.sweep_cells {
            assert_eq!(
                d.len(),
                t_n * bh,
                "cell gradients were added before the last step"
            );
        }
        if self.kind == CellKind::Gru {
            resize(&mut self.dgh, t_n * bg);
        }
        if self.record_dh {
            resize(&mut self.dh_steps, t_n * bh);
            if self.kind == CellKind::Lstm {
                resize(&mut self.dc_steps, t_n * bh);
            }
        }
        // dh_{t-1} = dG_t·W_hᵀ each step: (B, H) = (B, G·H)·(G·H, H)
        self.sweep_packed = pack_rhs(
            &self.w_h.value,
            Op::T,
            g_n,
            h_n,
            b_n,
            t_n,
            &mut self.w_h_packed,
        );
    }

    /// One step of the backward sweep: with dy_t (B, H) the gradient reaching h_t from
    /// outside the layer, computes dG_t (kept for [`Self::sweep_weights`]) and leaves in `dh`
    /// (and `dc`) the gradient reaching h_{t-1} (c_{t-1}).
    fn sweep_step(&mut self, t: usize, dy_t: &[T]) {
        let (b_n, h_n, g_n) = (self.batch, self.hidden, self.gate_width());
        let (bh, bg) = (b_n * h_n, b_n * g_n);
        let (packed, w_h, w_h_packed) = (self.sweep_packed, &self.w_h.value, &self.w_h_packed);
        let step_product = |dh: &mut [T], dg: &[T], accumulate: bool| {
            if packed {
                gemm_packed(dh, Out::add_if(accumulate), dg, w_h_packed, b_n, h_n, g_n);
            } else {
                gemm(
                    dh,
                    Out::add_if(accumulate),
                    dg,
                    Op::N,
                    w_h,
                    Op::T,
                    b_n,
                    h_n,
                    g_n,
                );
            }
        };
        for ((s, &a), &b) in self.dh_tot.iter_mut().zip(dy_t).zip(&self.dh) {
            *s = a + b;
        }
        if self.record_dh {
            self.dh_steps[t * bh..(t + 1) * bh].copy_from_slice(&self.dh_tot);
        }
        let gates = &self.gates[t * bg..(t + 1) * bg];
        let dg = &mut self.dgates[t * bg..(t + 1) * bg];
        match self.kind {
            CellKind::Lstm => {
                // A loss that reads c_t directly adds its gradient to the one from c_{t+1}.
                if let Some(d) = &self.sweep_cells {
                    kernels::add_into(&mut self.dc, &d[t * bh..(t + 1) * bh]);
                }
                if self.record_dh {
                    // dL/dc_t = dc (from c_{t+1}) + dh_tot ⊙ o ⊙ (1 - tanh²c); gates (B, 4H)
                    // hold i, f, g, o per row.
                    let tc = &self.tanh_c[t * bh..(t + 1) * bh];
                    let rec = &mut self.dc_steps[t * bh..(t + 1) * bh];
                    for b in 0..b_n {
                        let o = &gates[b * g_n + 3 * h_n..(b + 1) * g_n];
                        for j in 0..h_n {
                            let k = b * h_n + j;
                            rec[k] = self.dc[k] + self.dh_tot[k] * o[j] * (T::ONE - tc[k] * tc[k]);
                        }
                    }
                }
                kernels::lstm_backward(
                    gates,
                    &self.c[t * bh..(t + 1) * bh],
                    &self.tanh_c[t * bh..(t + 1) * bh],
                    &self.dh_tot,
                    &mut self.dc,
                    dg,
                    h_n,
                );
                step_product(&mut self.dh, dg, false);
            }
            CellKind::Gru => {
                let dgh = &mut self.dgh[t * bg..(t + 1) * bg];
                kernels::gru_backward(
                    gates,
                    &self.hn[t * bh..(t + 1) * bh],
                    &self.h[t * bh..(t + 1) * bh],
                    &self.dh_tot,
                    dg,
                    dgh,
                    &mut self.dh,
                    h_n,
                );
                step_product(&mut self.dh, dgh, true);
            }
            CellKind::RnnTanh | CellKind::RnnSigmoid => {
                kernels::rnn_backward(
                    &self.h[(t + 1) * bh..(t + 2) * bh],
                    &self.dh_tot,
                    dg,
                    self.kind == CellKind::RnnSigmoid,
                );
                step_product(&mut self.dh, dg, false);
            }
        }
    }

    /// After the sweep: the weight gradients from every step's dG in one GEMM each, and the
    /// input gradient dX += dG·W_xᵀ when `dx` is given.
    fn sweep_weights(&mut self, x: &[T], dx: Option<&mut [T]>) {
        let (t_n, b_n, h_n, g_n) = (self.steps, self.batch, self.hidden, self.gate_width());
        let rows = t_n * b_n;
        self.sweep_cells = None;
        // dW_x += Xᵀ·dG: (I, G·H) = (T·B, I)ᵀ·(T·B, G·H)
        gemm(
            &mut self.w_x.grad,
            Out::Add,
            x,
            Op::T,
            &self.dgates,
            Op::N,
            self.input,
            g_n,
            rows,
        );
        let dgh = if self.kind == CellKind::Gru {
            &self.dgh
        } else {
            &self.dgates
        };
        // dW_h += H_prevᵀ·dG_h: (H, G·H) = (T·B, H)ᵀ·(T·B, G·H)
        gemm(
            &mut self.w_h.grad,
            Out::Add,
            &self.h[..rows * h_n],
            Op::T,
            dgh,
            Op::N,
            h_n,
            g_n,
            rows,
        );
        kernels::sum_rows_into(&self.dgates, &mut self.b.grad);
        if let Some(bh_param) = &mut self.b_h {
            kernels::sum_rows_into(&self.dgh, &mut bh_param.grad);
        }
        if let Some(dx) = dx {
            // dX += dG·W_xᵀ: (T·B, I) = (T·B, G·H)·(I, G·H)ᵀ
            gemm(
                dx,
                Out::Add,
                &self.dgates,
                Op::N,
                &self.w_x.value,
                Op::T,
                rows,
                self.input,
                g_n,
            );
        }
    }

    /// Starts a backward through the steps taken since [`Self::begin`] one step at a time, last
    /// step first, for a decoder whose inputs depend on its earlier outputs through layers
    /// outside this one (input feeding): the gradient of step t's input is needed before the
    /// output gradient of step t-1 is known. Then call [`Self::backward_step`] once per step
    /// (T-1 down to 0) and [`Self::backward_steps_end`]; the result equals
    /// [`Self::backward_steps`] given all the output gradients at once.
    pub fn backward_steps_begin(&mut self) {
        self.sweep_start();
        self.sweep_t = self.steps;
        let (t_n, b_n, h_n, g_n) = (self.steps, self.batch, self.hidden, self.gate_width());
        if !self.sweep_packed {
            self.sweep_packed = pack_rhs_upto(
                &self.w_h.value,
                Op::T,
                g_n,
                h_n,
                b_n,
                t_n,
                STEP_MAX_ROWS,
                &mut self.w_h_packed,
            );
        }
        // dx_t = dG_t·W_xᵀ each step: (B, I) = (B, G·H)·(G·H, I)
        self.step_wxt = pack_rhs_upto(
            &self.w_x.value,
            Op::T,
            g_n,
            self.input,
            b_n,
            t_n,
            STEP_MAX_ROWS,
            &mut self.step_wxt_packed,
        );
    }

    /// The next step of a step-wise backward (step t = T-1, then T-2, …): `dy_t` (B, H) is
    /// dL/dh_t from outside the layer; adds dL/dx_t = dG_t·W_xᵀ into `dx_t` (B, I) if given.
    pub fn backward_step(&mut self, dy_t: &[T], dx_t: Option<&mut [T]>) {
        let (b_n, g_n) = (self.batch, self.gate_width());
        assert!(
            self.sweep_t > 0,
            "backward_step called more often than steps were taken"
        );
        assert_eq!(dy_t.len(), b_n * self.hidden, "step gradient is not (B, H)");
        self.sweep_t -= 1;
        let t = self.sweep_t;
        self.sweep_step(t, dy_t);
        if let Some(dx) = dx_t {
            assert_eq!(
                dx.len(),
                b_n * self.input,
                "step input gradient is not (B, I)"
            );
            let bg = b_n * g_n;
            let dg = &self.dgates[t * bg..(t + 1) * bg];
            // (B, I) += (B, G·H)·(I, G·H)ᵀ
            if self.step_wxt {
                gemm_packed(
                    dx,
                    Out::Add,
                    dg,
                    &self.step_wxt_packed,
                    b_n,
                    self.input,
                    g_n,
                );
            } else {
                gemm(
                    dx,
                    Out::Add,
                    dg,
                    Op::N,
                    &self.w_x.value,
                    Op::T,
                    b_n,
                    self.input,
                    g_n,
                );
            }
        }
    }

    /// Ends a step-wise backward: adds the weight gradients of all steps. dL/dh0 (and dL/dc0)
    /// are then in [`Self::d_h0`] / [`Self::d_c0`].
    pub fn backward_steps_end(&mut self) {
        assert_eq!(
            self.sweep_t, 0,
            "backward_steps_end before every step was backpropagated"
        );
        let x = std::mem::take(&mut self.x_steps);
        self.sweep_weights(&x, None);
        self.x_steps = x;
    }

    /// [`Self::backward`] for the steps taken since [`Self::begin`], whose inputs the layer
    /// kept: `dy` (T, B, H) for the T steps, `dx` (T, B, I) accumulated into if given.
    pub fn backward_steps(&mut self, dy: &[T], dx: Option<&mut [T]>) {
        let x = std::mem::take(&mut self.x_steps);
        self.backward(&x, dy, dx);
        self.x_steps = x;
    }

    /// Adds dL/dh_T (B, H), and for an LSTM dL/dc_T (B, H) if the loss reads the cell, to the
    /// gradient the next backward starts its sweep from. For a loss that reads the final state
    /// directly (an encoder's last state starting a decoder), rather than through the outputs.
    /// Cleared by that backward and by any new forward or [`Self::begin`].
    pub fn add_d_final(&mut self, d_h: &[T], d_c: Option<&[T]>) {
        let bh = self.batch * self.hidden;
        assert_eq!(d_h.len(), bh, "final-state gradient is not (B, H)");
        kernels::add_into(self.d_final_h.get_or_insert_with(|| vec![T::ZERO; bh]), d_h);
        if let Some(d_c) = d_c {
            assert_eq!(d_c.len(), bh, "final-cell gradient is not (B, H)");
            let t_n = self.steps;
            assert!(t_n > 0, "no step has produced a final cell");
            kernels::add_into(&mut self.pending_d_cells()[(t_n - 1) * bh..], d_c);
        }
    }

    /// LSTM only: adds dL/dc_t for every step, (T, B, H) (c_1..c_T, as [`Self::cells`] holds
    /// them), for a loss that reads cells other than the last (the final cell of each sequence
    /// in a padded batch). Used by the next backward, like [`Self::add_d_final`].
    pub fn add_d_cells(&mut self, d_c: &[T]) {
        let n = self.steps * self.batch * self.hidden;
        assert_eq!(d_c.len(), n, "cell gradient is not (T, B, H)");
        kernels::add_into(self.pending_d_cells(), d_c);
    }

    /// The pending cell gradients, (T, B, H), created as zeros.
    fn pending_d_cells(&mut self) -> &mut [T] {
        assert_eq!(self.kind, CellKind::Lstm, "only an LSTM has a cell state");
        let n = self.steps * self.batch * self.hidden;
        self.d_cells.get_or_insert_with(|| vec![T::ZERO; n])
    }

    /// LSTM cells of the last forward or of the steps so far, c_1..c_T (T, B, H); empty for
    /// other cells.
    pub fn cells(&self) -> &[T] {
        if self.kind == CellKind::Lstm {
            &self.c[self.batch * self.hidden..]
        } else {
            &[]
        }
    }

    /// dL/dh0 after [`Self::backward`], (B, H).
    pub fn d_h0(&self) -> &[T] {
        &self.dh
    }

    /// dL/dc0 after [`Self::backward`] (LSTM only), (B, H).
    pub fn d_c0(&self) -> &[T] {
        &self.dc
    }
}

impl<T: Gemm> ParamSet<T> for Recurrent<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = vec![&self.w_x, &self.w_h, &self.b];
        v.extend(self.b_h.as_ref());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.w_x, &mut self.w_h, &mut self.b];
        v.extend(self.b_h.as_mut());
        v
    }
}

/// Sets a buffer's length, reusing its allocation; contents are overwritten by the caller.
pub(crate) fn resize<T: Gemm>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.resize(n, T::ZERO);
    }
}
