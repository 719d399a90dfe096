//! Language models over token streams: fixed-window (Bengio et al. 2003) and recurrent
//! (Elman RNN, LSTM, GRU; stacked, with dropout, optional residual connections and tied
//! input/output embeddings).
//!
//! All models read a batch as a (T, B) block of ids — column b is a contiguous piece of the
//! corpus, row t is time — and carry a state from one block to the next: hidden (and cell)
//! states for recurrent models, the last n-1 tokens for the window model. Training truncates
//! backpropagation at block boundaries (the carried state is detached).

use firth_nn::dropout::{Dropout, DropoutKind};
use firth_nn::embedding::Embedding;
use firth_nn::linear::{affine_backward, affine_forward, Linear};
use firth_nn::param::{Param, ParamSet};
use firth_nn::recurrent::{CellKind, Recurrent};
use firth_nn::softmax::{softmax_cross_entropy, softmax_cross_entropy_backward};
use firth_nn::{Gemm, Rng};
use firth_text::Level;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Fixed-window feed-forward LM: embeddings of the previous n-1 tokens, concatenated,
    /// through a tanh layer, then softmax.
    Window,
    /// Elman RNN with tanh (or σ, with `rnn_sigmoid`).
    Rnn,
    Lstm,
    Gru,
}

impl Arch {
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "window" => Some(Arch::Window),
            "rnn" => Some(Arch::Rnn),
            "lstm" => Some(Arch::Lstm),
            "gru" => Some(Arch::Gru),
            _ => None,
        }
    }
}

/// Everything that fixes a model's shape and behaviour; saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    pub arch: Arch,
    pub level: Level,
    pub vocab: usize,
    pub emb: usize,
    pub hidden: usize,
    pub layers: usize,
    pub dropout: f64,
    pub dropout_kind: DropoutKind,
    pub tied: bool,
    pub residual: bool,
    /// Window model: number of previous tokens it sees (n-1 for an n-gram-like model).
    pub context: usize,
    pub init_range: f64,
    pub forget_bias: f64,
    pub rnn_sigmoid: bool,
    /// Trained on each line read backwards (`--reverse`): a backward character LM, whose
    /// consumers ([`crate::char_features`]) check this before reading it right to left.
    #[serde(default)]
    pub reverse: bool,
}

impl LmConfig {
    /// One layer of `hidden` units with embeddings of the same size, no dropout, untied,
    /// weights in ±0.1 (Zaremba et al.), a window of 4 for `Arch::Window`; change fields
    /// with struct update syntax.
    pub fn new(arch: Arch, level: Level, vocab: usize, hidden: usize) -> LmConfig {
        LmConfig {
            arch,
            level,
            vocab,
            emb: hidden,
            hidden,
            layers: 1,
            dropout: 0.0,
            dropout_kind: DropoutKind::Standard,
            tied: false,
            residual: false,
            context: 4,
            init_range: 0.1,
            forget_bias: 0.0,
            rnn_sigmoid: false,
            reverse: false,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.vocab == 0 || self.emb == 0 || self.hidden == 0 || self.layers == 0 {
            return Err("--emb, --hidden and --layers must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("--dropout {} must be in [0, 1)", self.dropout));
        }
        // The output layer reads the top hidden state (width --hidden, for every arch, the
        // window model's tanh layer included), so it can share the (V, emb) table only when
        // the widths agree; anything else would silently train untied.
        if self.tied && self.emb != self.hidden {
            return Err(format!(
                "--tied needs --emb equal to --hidden (got {} and {}): the output layer \
                 shares the embedding table; set both to one size or drop --tied",
                self.emb, self.hidden
            ));
        }
        if self.arch == Arch::Window && self.context == 0 {
            return Err("the window model needs --context of at least 1".into());
        }
        Ok(())
    }
}

/// What a model carries between blocks, per batch column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LmState<T> {
    pub h: Vec<Vec<T>>, // per layer (B, H)
    pub c: Vec<Vec<T>>, // per layer (B, H), LSTM only
    /// Window model: the last `context` tokens of each column, (B, context).
    pub history: Vec<u32>,
    pub batch: usize,
}

impl<T: Gemm> LmState<T> {
    /// Keeps only the columns in `rows` (in that order): beam search reorders its hypotheses.
    pub fn select(&self, rows: &[usize]) -> LmState<T> {
        let pick = |v: &Vec<T>| {
            if v.is_empty() {
                return Vec::new();
            }
            let w = v.len() / self.batch;
            rows.iter()
                .flat_map(|&r| v[r * w..(r + 1) * w].iter().copied())
                .collect()
        };
        let w = if self.batch > 0 {
            self.history.len() / self.batch
        } else {
            0
        };
        LmState {
            h: self.h.iter().map(pick).collect(),
            c: self.c.iter().map(pick).collect(),
            history: rows
                .iter()
                .flat_map(|&r| self.history[r * w..(r + 1) * w].iter().copied())
                .collect(),
            batch: rows.len(),
        }
    }
}

impl<T: Gemm> LmState<T> {
    /// Puts states for consecutive column groups back side by side: the inverse of
    /// [`LmState::select`] over a partition of the columns into ranges.
    pub fn concat<'a>(parts: impl Iterator<Item = &'a LmState<T>> + Clone) -> LmState<T>
    where
        T: 'a,
    {
        let first = parts.clone().next().expect("at least one state");
        let join = |pick: &dyn Fn(&'a LmState<T>) -> &'a Vec<Vec<T>>, l: usize| -> Vec<T> {
            parts
                .clone()
                .flat_map(|p| pick(p)[l].iter().copied())
                .collect()
        };
        LmState {
            h: (0..first.h.len()).map(|l| join(&|p| &p.h, l)).collect(),
            c: (0..first.c.len()).map(|l| join(&|p| &p.c, l)).collect(),
            history: parts
                .clone()
                .flat_map(|p| p.history.iter().copied())
                .collect(),
            batch: parts.map(|p| p.batch).sum(),
        }
    }
}

/// A language model: a recurrent stack or a fixed-window network.
#[derive(Clone, Debug)]
pub struct LanguageModel<T> {
    pub config: LmConfig,
    pub embedding: Embedding<T>,
    layers: Vec<Recurrent<T>>,
    /// Window model's hidden layer, (H, context·E).
    window_hidden: Option<Linear<T>>,
    /// Output weights (V, H) unless tied to the embedding table.
    out_w: Option<Param<T>>,
    out_b: Param<T>, // (V)
    drops: Vec<Dropout<T>>,
    // Activations of the last forward pass.
    steps: usize,
    batch: usize,
    ids: Vec<u32>,     // (T, B) inputs
    targets: Vec<u32>, // (T, B)
    context: Vec<u32>, // (T, B, context) window model
    xs: Vec<Vec<T>>,   // per stage (T, B, D): embeddings, then each layer's output (after dropout)
    logits: Vec<T>,    // (T·B, V); probabilities after the loss
    nll: Vec<f64>,     // (T·B)
    dxs: Vec<Vec<T>>,
    dout: Vec<T>,
    window_act: Vec<T>, // (T·B, H) tanh activations of the window model, before dropout
}

impl<T: Gemm> LanguageModel<T> {
    pub fn new(config: LmConfig, rng: &mut Rng) -> Result<Self, String> {
        config.validate()?;
        let r = config.init_range;
        let c = &config;
        let embedding = Embedding::new("embedding", c.vocab, c.emb, r, rng);
        let mut layers = Vec::new();
        let mut window_hidden = None;
        let top = match c.arch {
            Arch::Window => {
                window_hidden = Some(Linear::new(
                    "hidden",
                    c.context * c.emb,
                    c.hidden,
                    true,
                    r,
                    rng,
                ));
                c.hidden
            }
            arch => {
                let kind = match arch {
                    Arch::Lstm => CellKind::Lstm,
                    Arch::Gru => CellKind::Gru,
                    _ if c.rnn_sigmoid => CellKind::RnnSigmoid,
                    _ => CellKind::RnnTanh,
                };
                for l in 0..c.layers {
                    let input = if l == 0 { c.emb } else { c.hidden };
                    layers.push(Recurrent::new(
                        &format!("layer{l}"),
                        kind,
                        input,
                        c.hidden,
                        r,
                        c.forget_bias,
                        rng,
                    ));
                }
                c.hidden
            }
        };
        debug_assert!(!c.tied || top == c.emb, "validate() checks tied widths");
        let tied = c.tied;
        let out_w = (!tied).then(|| Param::uniform("out.weight", &[c.vocab, top], r, rng));
        let out_b = Param::uniform("out.bias", &[c.vocab], r, rng);
        let stages = if c.arch == Arch::Window {
            2
        } else {
            c.layers + 1
        };
        let drops = (0..stages)
            .map(|_| Dropout::new(c.dropout, c.dropout_kind))
            .collect();
        Ok(LanguageModel {
            config,
            embedding,
            layers,
            window_hidden,
            out_w,
            out_b,
            drops,
            steps: 0,
            batch: 0,
            ids: Vec::new(),
            targets: Vec::new(),
            context: Vec::new(),
            xs: Vec::new(),
            logits: Vec::new(),
            nll: Vec::new(),
            dxs: Vec::new(),
            dout: Vec::new(),
            window_act: Vec::new(),
        })
    }

    pub fn vocab(&self) -> usize {
        self.config.vocab
    }

    /// Floating-point operations per training token (forward + backward), counting a
    /// multiply-add as 2 and only the matrix products, which are all but a few percent of the
    /// work. Backward costs twice the forward (input and weight gradients).
    pub fn train_flops_per_token(&self) -> f64 {
        let c = &self.config;
        let (e, h, v) = (c.emb as f64, c.hidden as f64, c.vocab as f64);
        let forward = match c.arch {
            Arch::Window => 2.0 * (c.context as f64 * e * h) + 2.0 * h * v,
            arch => {
                let g = match arch {
                    Arch::Lstm => 4.0,
                    Arch::Gru => 3.0,
                    _ => 1.0,
                };
                let mut f = 2.0 * h * v;
                for l in 0..c.layers {
                    let input = if l == 0 { e } else { h };
                    f += 2.0 * (input + h) * g * h;
                }
                f
            }
        };
        3.0 * forward
    }

    /// A zero state for `batch` columns (the window model starts from a history of token 0,
    /// which callers set to `<eos>` by choosing the vocabulary order, see [`Self::start_state`]).
    pub fn new_state(&self, batch: usize) -> LmState<T> {
        let h = self.config.hidden;
        let lstm = self.config.arch == Arch::Lstm;
        LmState {
            h: self
                .layers
                .iter()
                .map(|_| vec![T::ZERO; batch * h])
                .collect(),
            c: if lstm {
                self.layers
                    .iter()
                    .map(|_| vec![T::ZERO; batch * h])
                    .collect()
            } else {
                Vec::new()
            },
            history: vec![
                0;
                batch
                    * if self.config.arch == Arch::Window {
                        self.config.context
                    } else {
                        0
                    }
            ],
            batch,
        }
    }

    /// A fresh state whose window history is filled with `pad` (the `<eos>` id: a sentence start).
    pub fn start_state(&self, batch: usize, pad: u32) -> LmState<T> {
        let mut s = self.new_state(batch);
        s.history.fill(pad);
        s
    }

    /// Runs the model on `ids` (T, B) from `state`, leaving unnormalised scores (T·B, V) in
    /// [`Self::logits`] and advancing `state` to the end of the block.
    pub fn forward_logits(
        &mut self,
        ids: &[u32],
        steps: usize,
        batch: usize,
        state: &mut LmState<T>,
        train: bool,
        rng: &mut Rng,
    ) {
        self.forward_body(ids, steps, batch, state, train, rng);
        let c = &self.config;
        let top = &self.xs[self.xs.len() - 1]; // Self::top, borrowed field by field
        let width = top.len() / (steps * batch);
        self.logits.resize(steps * batch * c.vocab, T::ZERO);
        let w = self
            .out_w
            .as_ref()
            .map_or(&self.embedding.weight.value, |p| &p.value);
        affine_forward(
            top,
            w,
            Some(&self.out_b.value[..]),
            &mut self.logits,
            width,
            c.vocab,
        );
    }

    /// The body of the model — embedding and recurrent stack (or window layer), everything
    /// below the output layer — on `ids` (T, B) from `state`; leaves the top activations (after
    /// dropout) in [`Self::top`] and advances `state`. Data-parallel training runs bodies on
    /// column shards of replicas and the output layer once over all of their rows
    /// ([`Self::output_step_by_vocab`]).
    pub fn forward_body(
        &mut self,
        ids: &[u32],
        steps: usize,
        batch: usize,
        state: &mut LmState<T>,
        train: bool,
        rng: &mut Rng,
    ) {
        assert_eq!(ids.len(), steps * batch, "ids are not (T, B)");
        assert_eq!(state.batch, batch, "state was made for another batch size");
        let c = self.config.clone();
        self.steps = steps;
        self.batch = batch;
        self.ids.clear();
        self.ids.extend_from_slice(ids);
        let n = steps * batch;
        let stages = self.drops.len();
        self.xs.resize(stages, Vec::new());
        match c.arch {
            Arch::Window => {
                let k = c.context;
                // Position t predicts the token after ids[t] from the last k tokens of its
                // column up to and including ids[t].
                self.context.clear();
                let mut hist = state.history.clone(); // (B, k), oldest first
                for t in 0..steps {
                    for b in 0..batch {
                        let row = &mut hist[b * k..(b + 1) * k];
                        row.rotate_left(1);
                        row[k - 1] = ids[t * batch + b];
                    }
                    for b in 0..batch {
                        self.context.extend_from_slice(&hist[b * k..(b + 1) * k]);
                    }
                }
                state.history = hist;
                let x0 = &mut self.xs[0];
                x0.resize(n * k * c.emb, T::ZERO);
                self.embedding.forward(&self.context, x0);
                self.drops[0].forward(x0, k * c.emb * batch, train, rng);
                let hidden = self
                    .window_hidden
                    .as_ref()
                    .expect("window model has a hidden layer");
                let (head, tail) = self.xs.split_at_mut(1);
                let x1 = &mut tail[0];
                x1.resize(n * c.hidden, T::ZERO);
                hidden.forward(&head[0], x1);
                for v in x1.iter_mut() {
                    *v = v.tanh();
                }
                self.window_act.clear();
                self.window_act.extend_from_slice(x1);
                self.drops[1].forward(x1, batch * c.hidden, train, rng);
            }
            _ => {
                let x0 = &mut self.xs[0];
                x0.resize(n * c.emb, T::ZERO);
                self.embedding.forward(ids, x0);
                self.drops[0].forward(x0, batch * c.emb, train, rng);
                for l in 0..self.layers.len() {
                    let (head, tail) = self.xs.split_at_mut(l + 1);
                    let input = &head[l];
                    let c0: &[T] = if c.arch == Arch::Lstm {
                        &state.c[l]
                    } else {
                        &[]
                    };
                    let y = self.layers[l].forward(input, steps, batch, &state.h[l], c0);
                    let out = &mut tail[0];
                    out.clear();
                    out.extend_from_slice(y);
                    if c.residual && l > 0 {
                        firth_nn::kernels::add_into(out, input);
                    }
                    state.h[l].copy_from_slice(self.layers[l].last_h());
                    if c.arch == Arch::Lstm {
                        state.c[l].copy_from_slice(self.layers[l].last_c());
                    }
                    self.drops[l + 1].forward(out, batch * c.hidden, train, rng);
                }
            }
        }
    }

    /// Top activations of the last forward, (T·B, width): what the output layer reads.
    pub fn top(&self) -> &[T] {
        &self.xs[self.xs.len() - 1]
    }

    /// The output of each layer of the last forward, (T·B, width) each, bottom first: what
    /// the layer above reads (with the residual sum, where the model has residual
    /// connections), the last one being [`Self::top`]. The window model has one layer, its
    /// tanh layer.
    pub fn layer_outputs(&self) -> &[Vec<T>] {
        &self.xs[1..]
    }

    /// Backpropagates `d_top` (T·B, width), the gradient at the top activations of the last
    /// [`Self::forward_body`], through the body, adding into its parameter gradients.
    pub fn backward_body(&mut self, d_top: &[T]) {
        self.reset_dxs();
        let last = self.dxs.len() - 1;
        assert_eq!(
            d_top.len(),
            self.dxs[last].len(),
            "d_top is not (T·B, width)"
        );
        self.dxs[last].copy_from_slice(d_top);
        self.backward_layers();
    }

    fn reset_dxs(&mut self) {
        self.dxs.resize(self.drops.len(), Vec::new());
        for (d, x) in self.dxs.iter_mut().zip(&self.xs) {
            d.clear();
            d.resize(x.len(), T::ZERO);
        }
    }

    /// Scores of the last forward, (T·B, V).
    pub fn logits(&self) -> &[T] {
        &self.logits
    }

    /// Forward pass plus cross-entropy against `targets` (T, B). Returns Σ -ln p(target) over
    /// the block, in nats; per-position values are in [`Self::token_nll`].
    pub fn forward(
        &mut self,
        ids: &[u32],
        targets: &[u32],
        steps: usize,
        batch: usize,
        state: &mut LmState<T>,
        train: bool,
        rng: &mut Rng,
    ) -> f64 {
        self.forward_logits(ids, steps, batch, state, train, rng);
        self.targets.clear();
        self.targets.extend_from_slice(targets);
        softmax_cross_entropy(&mut self.logits, targets, self.config.vocab, &mut self.nll)
    }

    /// -ln p(target) for each position of the last [`Self::forward`], (T·B).
    pub fn token_nll(&self) -> &[f64] {
        &self.nll
    }

    /// Backpropagates `scale` · (the summed loss of the last forward) into the parameter
    /// gradients. Zaremba et al. differentiate the loss summed over time and averaged over the
    /// batch: scale = 1/B.
    pub fn backward(&mut self, scale: f64) {
        softmax_cross_entropy_backward(&mut self.logits, &self.targets, self.config.vocab, scale);
        let c = self.config.clone();
        let (steps, batch) = (self.steps, self.batch);
        let n = steps * batch;
        let stages = self.drops.len();
        self.reset_dxs();
        let top = &self.xs[stages - 1];
        let width = top.len() / n;
        {
            let (w, dw) = match &mut self.out_w {
                Some(p) => (&p.value, &mut p.grad),
                None => {
                    self.embedding.weight.dense_grad = true;
                    (
                        &self.embedding.weight.value,
                        &mut self.embedding.weight.grad,
                    )
                }
            };
            affine_backward(
                top,
                &self.logits,
                w,
                dw,
                Some(&mut self.out_b.grad[..]),
                Some(&mut self.dxs[stages - 1]),
                width,
                c.vocab,
            );
        }
        self.backward_layers();
    }

    /// Backward through the body from the gradient in `dxs[last]`.
    fn backward_layers(&mut self) {
        let c = &self.config;
        match c.arch {
            Arch::Window => {
                self.drops[1].backward(&mut self.dxs[1]);
                let hidden = self
                    .window_hidden
                    .as_mut()
                    .expect("window model has a hidden layer");
                // d a = d y ⊙ (1 - tanh²a), with tanh a kept from before dropout.
                self.dout.clear();
                self.dout.extend(
                    self.window_act
                        .iter()
                        .zip(&self.dxs[1])
                        .map(|(&y, &d)| d * (T::ONE - y * y)),
                );
                hidden.backward(&self.xs[0], &self.dout, Some(&mut self.dxs[0]));
                self.drops[0].backward(&mut self.dxs[0]);
                self.embedding.backward(&self.context, &self.dxs[0]);
            }
            _ => {
                for l in (0..self.layers.len()).rev() {
                    self.drops[l + 1].backward(&mut self.dxs[l + 1]);
                    let (head, tail) = self.dxs.split_at_mut(l + 1);
                    let dy = &tail[0];
                    self.layers[l].backward(&self.xs[l], dy, Some(&mut head[l]));
                    if c.residual && l > 0 {
                        firth_nn::kernels::add_into(&mut head[l], dy);
                    }
                }
                self.drops[0].backward(&mut self.dxs[0]);
                self.embedding.backward(&self.ids, &self.dxs[0]);
            }
        }
    }
}

impl<T: Gemm> LanguageModel<T> {
    /// The parameters below the output layer (the embedding, tied or not, and the recurrent or
    /// window layers): what a data-parallel replica trains, see [`Self::forward_body`].
    pub fn body_params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.embedding.weight];
        for l in &mut self.layers {
            v.extend(l.params_mut());
        }
        if let Some(h) = &mut self.window_hidden {
            v.extend(h.params_mut());
        }
        v
    }

    /// Zeroes the gradients of [`Self::body_params_mut`].
    pub fn zero_grad_body(&mut self) {
        for p in self.body_params_mut() {
            p.zero_grad();
        }
    }
}

/// What [`LanguageModel::output_step_by_vocab`] measured.
pub struct OutputStep {
    /// Σ -ln p(target) in nats.
    pub loss: f64,
    /// ‖dW‖² of an untied output weight.
    pub dw_sq_norm: Option<f64>,
}

impl LanguageModel<f32> {
    /// The output layer's training step over `top` (N, width) gathered from the bodies of the
    /// training workers (rows shard by shard; one worker: the model's own), split across `blocks` threads by
    /// vocabulary and within a thread by tiles that stay in cache
    /// ([`firth_nn::linear::by_vocab::softmax_step`]): scores z = top·Wᵀ + b, dz =
    /// scale·(softmax(z) - onehot(target)), dW = dzᵀ·top, db = Σ dz and d top = dz·W. dW, db and `d_top` (N, width) are overwritten (when tied, dW is the
    /// embedding table's gradient, made dense): the one exception to "backward accumulates",
    /// since nothing else writes them. Returns Σ -ln p(target) and, untied, dW's squared norm,
    /// measured tile by tile, for clipping. `scratch` holds the (N, V) scores and the rest
    /// between calls. When the loss is not finite, no gradient is computed.
    pub fn output_step_by_vocab(
        &mut self,
        top: &[f32],
        targets: &[u32],
        scale: f64,
        scratch: &mut firth_nn::linear::by_vocab::Scratch<f32>,
        d_top: &mut Vec<f32>,
        blocks: usize,
    ) -> OutputStep {
        use firth_nn::linear::by_vocab;
        let n = targets.len();
        let h = top.len() / n.max(1);
        assert_eq!(top.len(), n * h, "top is not (N, width)");
        let tied = self.out_w.is_none();
        let out_w = match &mut self.out_w {
            Some(p) => p,
            None => {
                self.embedding.weight.dense_grad = true;
                &mut self.embedding.weight
            }
        };
        d_top.resize(n * h, 0.0);
        let step = by_vocab::softmax_step(
            scratch,
            top,
            &out_w.value,
            &self.out_b.value,
            targets,
            scale,
            &mut out_w.grad,
            &mut self.out_b.grad,
            d_top,
            &mut self.nll,
            h,
            blocks,
        );
        // Tied, the embedding's gradient still gets the bodies' rows added, so its norm is
        // not known yet.
        OutputStep {
            loss: step.loss,
            dw_sq_norm: (!tied && step.loss.is_finite()).then_some(step.dw_sq_norm),
        }
    }
}

impl<T: Gemm> ParamSet<T> for LanguageModel<T> {
    fn params(&self) -> Vec<&Param<T>> {
        let mut v = vec![&self.embedding.weight];
        for l in &self.layers {
            v.extend(l.params());
        }
        if let Some(h) = &self.window_hidden {
            v.extend(h.params());
        }
        v.extend(self.out_w.as_ref());
        v.push(&self.out_b);
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<T>> {
        let mut v = vec![&mut self.embedding.weight];
        for l in &mut self.layers {
            v.extend(l.params_mut());
        }
        if let Some(h) = &mut self.window_hidden {
            v.extend(h.params_mut());
        }
        v.extend(self.out_w.as_mut());
        v.push(&mut self.out_b);
        v
    }
}
