//! The encoder-decoder building blocks composed: an LSTM encoder whose per-sequence final state
//! starts a step-wise LSTM decoder, attention of each decoder state over the encoder outputs,
//! an output layer on [h_t ; context_t] and the masked cross-entropy of padded targets. One
//! backward through all of it is checked against finite differences (f64).

use firth_models::encoder::{EncoderConfig, SeqEncoder};
use firth_nn::attention::{
    attention_backward, attention_forward, AttentionCache, AttentionKind, AttentionParams,
};
use firth_nn::gradcheck::{check_input, check_params};
use firth_nn::linear::Linear;
use firth_nn::param::{Param, ParamSet};
use firth_nn::recurrent::Recurrent;
use firth_nn::seq::{masked_cross_entropy, masked_cross_entropy_backward, PaddedBatch};
use firth_nn::{CellKind, Rng};

const S: usize = 4; // source steps
const B: usize = 3;
const SRC_LENGTHS: [usize; B] = [4, 1, 3];
const I: usize = 3; // source and target input width
const H: usize = 4;
const V: usize = 5;

struct Seq2Seq {
    enc: SeqEncoder<f64>,
    dec: Recurrent<f64>,
    att: AttentionParams<f64>,
    out: Linear<f64>, // [h ; c] (2H) → V
}

impl ParamSet<f64> for Seq2Seq {
    fn params(&self) -> Vec<&Param<f64>> {
        let mut v = self.enc.params();
        v.extend(self.dec.params());
        v.extend(self.att.params());
        v.extend(self.out.params());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param<f64>> {
        let mut v = self.enc.params_mut();
        v.extend(self.dec.params_mut());
        v.extend(self.att.params_mut());
        v.extend(self.out.params_mut());
        v
    }
}

struct Data {
    src: Vec<f64>,    // (S, B, I)
    tgt_in: Vec<f64>, // (T, B, I) teacher-forced decoder inputs
    targets: PaddedBatch,
}

/// Forward; with `grad`, also the backward, adding dL/d src into `grad`. Returns the loss.
fn run(m: &mut Seq2Seq, d: &Data, grad: Option<&mut [f64]>) -> f64 {
    let steps = d.targets.steps;
    let mut rng = Rng::new(0);
    let memory = m
        .enc
        .forward(&d.src, S, B, &SRC_LENGTHS, false, &mut rng)
        .to_vec();
    m.dec.begin(B, m.enc.final_h(), m.enc.final_c());
    let mut caches = vec![AttentionCache::default(); steps];
    let mut features = vec![0.0; steps * B * 2 * H]; // (T, B, 2H): [h_t ; c_t]
    let mut contexts = vec![0.0; B * H];
    for t in 0..steps {
        let h_t = m.dec.step(&d.tgt_in[t * B * I..(t + 1) * B * I]).to_vec();
        attention_forward(
            &m.att,
            &h_t,
            &memory,
            &memory,
            &SRC_LENGTHS,
            &mut caches[t],
            &mut contexts,
        );
        for b in 0..B {
            let row = &mut features[(t * B + b) * 2 * H..][..2 * H];
            row[..H].copy_from_slice(&h_t[b * H..][..H]);
            row[H..].copy_from_slice(&contexts[b * H..][..H]);
        }
    }
    let mut logits = vec![0.0; steps * B * V];
    m.out.forward(&features, &mut logits);
    let (loss, tokens) = masked_cross_entropy(&mut logits, &d.targets, V).unwrap();
    let Some(d_src) = grad else {
        return loss / tokens as f64;
    };
    masked_cross_entropy_backward(&mut logits, &d.targets, V, 1.0 / tokens as f64);
    let mut d_features = vec![0.0; features.len()];
    m.out.backward(&features, &logits, Some(&mut d_features));
    let mut d_dec = vec![0.0; steps * B * H]; // dL/dh_t
    let mut d_memory = vec![0.0; memory.len()];
    let outputs = m.dec.output().to_vec();
    for t in 0..steps {
        let mut d_ctx = vec![0.0; B * H];
        for b in 0..B {
            let row = &d_features[(t * B + b) * 2 * H..][..2 * H];
            for j in 0..H {
                d_dec[(t * B + b) * H + j] += row[j];
                d_ctx[b * H + j] = row[H + j];
            }
        }
        let h_t = &outputs[t * B * H..(t + 1) * B * H];
        // Keys and values are the same memory: both gradients add into one buffer.
        let mut d_keys = vec![0.0; memory.len()];
        attention_backward(
            &mut m.att,
            h_t,
            &memory,
            &memory,
            &mut caches[t],
            &d_ctx,
            Some(&mut d_dec[t * B * H..(t + 1) * B * H]),
            Some(&mut d_keys),
            Some(&mut d_memory),
        );
        d_memory.iter_mut().zip(&d_keys).for_each(|(a, b)| *a += b);
    }
    m.dec.backward_steps(&d_dec, None);
    let (dh0, dc0) = (m.dec.d_h0().to_vec(), m.dec.d_c0().to_vec());
    m.enc.add_d_final(&dh0, Some(&dc0));
    m.enc.backward(&d.src, &d_memory, Some(d_src));
    loss / tokens as f64
}

#[test]
fn encoder_decoder_with_attention_gradients() {
    let mut rng = Rng::new(31);
    let enc_cfg = EncoderConfig {
        cell: CellKind::Lstm,
        input: I,
        hidden: H,
        layers: 1,
        bidirectional: false,
        dropout: 0.0,
    };
    let mut m = Seq2Seq {
        enc: SeqEncoder::new(&enc_cfg, 0.5, &mut rng),
        dec: Recurrent::new("dec", CellKind::Lstm, I, H, 0.5, 1.0, &mut rng),
        att: AttentionParams::new(
            "att",
            AttentionKind::Additive { hidden: 3 },
            H,
            H,
            0.5,
            &mut rng,
        ),
        out: Linear::new("out", 2 * H, V, true, 0.5, &mut rng),
    };
    let targets = PaddedBatch::new(&[vec![1, 2, 0], vec![4], vec![3, 3]], 0);
    let random = |n: usize, rng: &mut Rng| -> Vec<f64> { (0..n).map(|_| rng.normal()).collect() };
    let d = Data {
        src: random(S * B * I, &mut rng),
        tgt_in: random(targets.steps * B * I, &mut rng),
        targets,
    };
    let (worst, at) = check_params(
        &mut m,
        |m| {
            let mut unused = vec![0.0; S * B * I];
            run(m, &d, Some(&mut unused))
        },
        |m| run(m, &d, None),
        40,
    );
    assert!(worst < 1e-5, "worst {worst:e} at {at}");
    let mut d_src = vec![0.0; S * B * I];
    run(&mut m, &d, Some(&mut d_src));
    let worst = check_input(&d.src, &d_src, |x| {
        let probe = Data {
            src: x.to_vec(),
            tgt_in: d.tgt_in.clone(),
            targets: d.targets.clone(),
        };
        run(&mut m, &probe, None)
    });
    assert!(worst < 1e-5, "source gradient worst {worst:e}");
}
