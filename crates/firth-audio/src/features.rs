//! Acoustic features: log-mel filterbank energies and MFCCs, with deltas and normalisation.
//!
//! The pipeline for a signal x at `sample_rate` Hz:
//!
//! 1. **Pre-emphasis**: y_0 = x_0, y_n = x_n - a x_{n-1} (a = `preemphasis`, 0 turns it off),
//!    which lifts the high frequencies that voiced speech attenuates.
//! 2. **Framing**: frames of N = round(`frame_ms` · rate / 1000) samples every
//!    H = round(`hop_ms` · rate / 1000) (halves round up). A signal of n samples gives one frame
//!    when n ≤ N, else 1 + ⌈(n - N) / H⌉: the last frame is zero-padded rather than dropped.
//!    Each frame is multiplied by the window (`window`: none, or numpy's symmetric Hamming/Hann
//!    of length N).
//! 3. **Power spectrum**: P_k = |FFT_K(frame)_k|² / K for k = 0..=K/2, with K = `n_fft` ≥ N
//!    (the frame zero-padded to K). The frame's energy is E = Σ_k P_k.
//! 4. **Mel filterbank**: `mel_bands` triangles evenly spaced on the HTK mel scale
//!    m(f) = 2595 log₁₀(1 + f / 700) between `low_hz` and `high_hz`. The M + 2 edge
//!    frequencies f_i are snapped to FFT bins b_i = ⌊(K + 1) f_i / rate⌋, and filter j rises
//!    linearly from b_j to b_{j+1} and falls to b_{j+2} (weights (k - b_j)/(b_{j+1} - b_j) and
//!    (b_{j+2} - k)/(b_{j+2} - b_{j+1}), peak 1, no area normalisation).
//! 5. **Log**: ln max(·, `log_floor`).
//! 6. **MFCC** (when `kind` is MFCC): the orthonormal DCT-II of the M log energies,
//!    c_q = s_q Σ_j ℓ_j cos(π q (2j + 1) / 2M), s_0 = √(1/M), s_q = √(2/M), keeping q < `ceps`;
//!    then liftering c_q ← (1 + (L/2) sin(π q / L)) c_q when `lifter` L > 0; then, with
//!    `energy`, c_0 replaced by ln max(E, `log_floor`).
//! 7. **Deltas** (`deltas` = 1 or 2): d_t = Σ_{n=1}^{N} n (c_{t+n} - c_{t-n}) / (2 Σ n²) over
//!    ±`delta_window` frames, the first and last frames repeated past the ends; delta-deltas are
//!    the deltas of the deltas. A frame is [c, d, dd].
//! 8. **Normalisation** (`normalize` = utterance): each dimension shifted to mean 0 and scaled
//!    to variance 1 over the utterance's frames. A [`GlobalNorm`] fitted on training data does
//!    the same with corpus-wide statistics.
//!
//! Steps 1–7 are python_speech_features' (`fbank`, `logfbank`, `mfcc`, `delta`) exactly:
//! [`FeatureConfig::python_speech_features`] gives its defaults, and the tests pin the output
//! to a fixture it computed (tests/fixtures). The one difference is the floor: it replaces
//! energies that are exactly 0 by the f64 machine epsilon, we take max(·, floor) with that
//! floor by default, which differs only for energies in (0, 2.2e-16).

use crate::{Error, Result};
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::sync::Arc;

/// The analysis window applied to each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Window {
    /// No window (python_speech_features' default).
    Rectangular,
    /// 0.54 - 0.46 cos(2πn / (N - 1)), numpy's `hamming(N)`.
    Hamming,
    /// 0.5 - 0.5 cos(2πn / (N - 1)), numpy's `hanning(N)`.
    Hann,
}

/// Which features come out of step 5 or 6 of the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureKind {
    /// `mel_bands` log filterbank energies per frame.
    LogMel,
    /// `ceps` cepstral coefficients per frame.
    Mfcc,
}

/// Normalisation applied at the end of extraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    None,
    /// Mean 0, variance 1 per dimension over the utterance (CMVN).
    Utterance,
    /// Mean 0, variance 1 per dimension with a training set's statistics
    /// ([`FeatureConfig::global_norm`], fitted by [`GlobalNorm::fit`] on features extracted
    /// with [`FeatureConfig::unnormalized`]).
    Global,
}

/// Every setting of the feature pipeline; see the module documentation for what each does.
/// Serialisable so a model can store the exact features it was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    pub sample_rate: u32,
    pub frame_ms: f64,
    pub hop_ms: f64,
    /// FFT size; `None` takes the smallest power of two that holds a frame.
    pub n_fft: Option<usize>,
    pub window: Window,
    pub preemphasis: f64,
    pub mel_bands: usize,
    pub low_hz: f64,
    /// Upper edge of the filterbank; `None` is the Nyquist frequency.
    pub high_hz: Option<f64>,
    pub log_floor: f64,
    pub kind: FeatureKind,
    /// MFCC only: coefficients kept.
    pub ceps: usize,
    /// MFCC only: the lifter's L; 0 turns liftering off.
    pub lifter: f64,
    /// MFCC only: replace c_0 by the log frame energy.
    pub energy: bool,
    /// 0 (static only), 1 (+ deltas) or 2 (+ deltas and delta-deltas).
    pub deltas: usize,
    /// N of the delta regression (frames on each side).
    pub delta_window: usize,
    pub normalize: Normalize,
    /// The statistics of [`Normalize::Global`] (and only then), kept with the settings so
    /// test audio is normalised as the training audio was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_norm: Option<GlobalNorm>,
}

impl Default for FeatureConfig {
    /// 13 MFCCs (c_0 as log energy, lifter 22) with deltas and delta-deltas, 25 ms Hamming
    /// frames every 10 ms at 8 kHz, 26 mel bands, per-utterance normalisation: 39 numbers per
    /// frame, the classic front end of connected-digit recognisers.
    fn default() -> Self {
        FeatureConfig {
            sample_rate: 8000,
            frame_ms: 25.0,
            hop_ms: 10.0,
            n_fft: None,
            window: Window::Hamming,
            preemphasis: 0.97,
            mel_bands: 26,
            low_hz: 0.0,
            high_hz: None,
            log_floor: f64::EPSILON,
            kind: FeatureKind::Mfcc,
            ceps: 13,
            lifter: 22.0,
            energy: true,
            deltas: 2,
            delta_window: 2,
            normalize: Normalize::Utterance,
            global_norm: None,
        }
    }
}

impl FeatureConfig {
    /// python_speech_features' `mfcc` defaults at `sample_rate` (its `logfbank` with
    /// `kind` = LogMel): 25 ms frames, 10 ms hop, no window, 512-point FFT, 26 bands from 0 Hz
    /// to Nyquist, pre-emphasis 0.97, 13 coefficients, lifter 22, c_0 as log energy, no deltas,
    /// no normalisation. Its `delta(feat, N)` is `deltas` = 1 with `delta_window` = N.
    pub fn python_speech_features(sample_rate: u32) -> Self {
        FeatureConfig {
            sample_rate,
            n_fft: Some(512),
            window: Window::Rectangular,
            deltas: 0,
            normalize: Normalize::None,
            ..FeatureConfig::default()
        }
    }

    /// Samples per frame and per hop, rounded half up as python_speech_features does.
    pub fn frame_and_hop(&self) -> (usize, usize) {
        let r = |ms: f64| (ms * self.sample_rate as f64 / 1000.0 + 0.5).floor() as usize;
        (r(self.frame_ms), r(self.hop_ms))
    }

    /// Numbers per frame before deltas: `mel_bands` or `ceps`.
    pub fn base_dim(&self) -> usize {
        match self.kind {
            FeatureKind::LogMel => self.mel_bands,
            FeatureKind::Mfcc => self.ceps,
        }
    }

    /// Numbers per frame: base_dim · (1 + deltas).
    pub fn dim(&self) -> usize {
        self.base_dim() * (1 + self.deltas)
    }

    /// These settings without normalisation: what a [`GlobalNorm`] is fitted on.
    pub fn unnormalized(&self) -> FeatureConfig {
        FeatureConfig {
            normalize: Normalize::None,
            global_norm: None,
            ..self.clone()
        }
    }

    /// Checks the settings, saying which is wrong and what would do.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(format!("feature settings: {msg}")));
        if self.sample_rate == 0 {
            return bad("sample rate must be positive".into());
        }
        let (n, h) = self.frame_and_hop();
        if n < 2 || h < 1 {
            return bad(format!(
                "{} ms frames every {} ms at {} Hz are {n} and {h} samples; frames need at least 2 and the hop at least 1",
                self.frame_ms, self.hop_ms, self.sample_rate
            ));
        }
        if let Some(k) = self.n_fft {
            if k < n {
                return bad(format!(
                    "an FFT of {k} points cannot hold a frame of {n} samples; use at least {}",
                    n.next_power_of_two()
                ));
            }
        }
        let nyquist = self.sample_rate as f64 / 2.0;
        let high = self.high_hz.unwrap_or(nyquist);
        if !(0.0..high).contains(&self.low_hz) || high > nyquist {
            return bad(format!(
                "the filterbank's band {}–{high} Hz must satisfy 0 ≤ low < high ≤ {nyquist} (Nyquist)",
                self.low_hz
            ));
        }
        if self.mel_bands == 0 {
            return bad("mel_bands must be at least 1".into());
        }
        if self.kind == FeatureKind::Mfcc && !(1..=self.mel_bands).contains(&self.ceps) {
            return bad(format!(
                "ceps must be in 1..={} (the number of mel bands)",
                self.mel_bands
            ));
        }
        if self.deltas > 2 {
            return bad(format!("deltas must be 0, 1 or 2, not {}", self.deltas));
        }
        if self.deltas > 0 && self.delta_window == 0 {
            return bad("delta_window must be at least 1 when deltas are on".into());
        }
        if self.log_floor.is_nan()
            || self.log_floor <= 0.0
            || !self.preemphasis.is_finite()
            || self.lifter < 0.0
        {
            return bad("log_floor must be positive, preemphasis finite, lifter ≥ 0".into());
        }
        match (self.normalize, &self.global_norm) {
            (Normalize::Global, None) => {
                return bad(
                    "global normalisation needs statistics of training features; \
                     `firth speech train --norm global` fits them (or use --norm utterance)"
                        .into(),
                )
            }
            (Normalize::Global, Some(g)) => {
                if g.mean.len() != self.dim() || g.inv_std.len() != self.dim() {
                    return bad(format!(
                        "the global statistics hold {} and {} numbers for frames of {}",
                        g.mean.len(),
                        g.inv_std.len(),
                        self.dim()
                    ));
                }
                if g.mean.iter().chain(&g.inv_std).any(|v| !v.is_finite()) {
                    return bad("the global statistics hold a NaN or infinity".into());
                }
            }
            (_, Some(_)) => {
                return bad("global statistics are given but normalize is not global".into())
            }
            _ => {}
        }
        Ok(())
    }
}

/// Feature frames, (T, C) row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub frames: usize,
    pub dim: usize,
    pub data: Vec<f32>, // (T, C)
}

impl Features {
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.dim..(t + 1) * self.dim]
    }
}

/// A [`FeatureConfig`] with everything that does not depend on the signal precomputed: the
/// window, the filterbank, the DCT and the FFT plan. Shareable across threads.
#[derive(Clone)]
pub struct FeatureExtractor {
    config: FeatureConfig,
    frame: usize,
    hop: usize,
    n_fft: usize,
    window: Vec<f64>,  // (N)
    filters: Vec<f64>, // (M, K/2 + 1)
    dct: Vec<f64>,     // (Q, M), lifter folded in
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureExtractor")
            .field("config", &self.config)
            .finish()
    }
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

impl FeatureExtractor {
    pub fn new(config: FeatureConfig) -> Result<Self> {
        config.validate()?;
        let (frame, hop) = config.frame_and_hop();
        let n_fft = config.n_fft.unwrap_or(frame.next_power_of_two());
        let bins = n_fft / 2 + 1;
        let window: Vec<f64> = (0..frame)
            .map(|n| {
                let c = (2.0 * PI * n as f64 / (frame - 1) as f64).cos();
                match config.window {
                    Window::Rectangular => 1.0,
                    Window::Hamming => 0.54 - 0.46 * c,
                    Window::Hann => 0.5 - 0.5 * c,
                }
            })
            .collect();

        let m = config.mel_bands;
        let rate = config.sample_rate as f64;
        let (lo, hi) = (
            hz_to_mel(config.low_hz),
            hz_to_mel(config.high_hz.unwrap_or(rate / 2.0)),
        );
        let edges: Vec<usize> = (0..m + 2)
            .map(|i| {
                // numpy's linspace: lo + i · (hi - lo) / (M + 1).
                let mel = lo + i as f64 * (hi - lo) / (m + 1) as f64;
                ((n_fft + 1) as f64 * mel_to_hz(mel) / rate).floor() as usize
            })
            .collect();
        let mut filters = vec![0.0; m * bins];
        for j in 0..m {
            let (a, b, c) = (edges[j], edges[j + 1], edges[j + 2]);
            let row = &mut filters[j * bins..(j + 1) * bins];
            for (k, w) in row.iter_mut().enumerate().take(b).skip(a) {
                *w = (k - a) as f64 / (b - a) as f64;
            }
            for (k, w) in row.iter_mut().enumerate().take(c).skip(b) {
                *w = (c - k) as f64 / (c - b) as f64;
            }
        }

        let q = if config.kind == FeatureKind::Mfcc {
            config.ceps
        } else {
            0
        };
        let mut dct = vec![0.0; q * m];
        for qi in 0..q {
            let s = if qi == 0 {
                (1.0 / m as f64).sqrt()
            } else {
                (2.0 / m as f64).sqrt()
            };
            let lift = if config.lifter > 0.0 {
                1.0 + config.lifter / 2.0 * (PI * qi as f64 / config.lifter).sin()
            } else {
                1.0
            };
            for j in 0..m {
                dct[qi * m + j] =
                    lift * s * (PI * qi as f64 * (2 * j + 1) as f64 / (2 * m) as f64).cos();
            }
        }
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n_fft);
        Ok(FeatureExtractor {
            config,
            frame,
            hop,
            n_fft,
            window,
            filters,
            dct,
            fft,
        })
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Frames a signal of `n` samples gives.
    pub fn frames_for(&self, n: usize) -> usize {
        if n <= self.frame {
            1
        } else {
            1 + (n - self.frame).div_ceil(self.hop)
        }
    }

    /// The features of `samples` (at the configured rate), (T, dim).
    pub fn extract(&self, samples: &[f32]) -> Features {
        let c = &self.config;
        let t_n = self.frames_for(samples.len());
        let m = c.mel_bands;
        let bins = self.n_fft / 2 + 1;
        let base = c.base_dim();
        let dim = c.dim();

        // Pre-emphasis, then zero-padding to whole frames.
        let padded_len = (t_n - 1) * self.hop + self.frame;
        let mut y = vec![0.0f64; padded_len.max(samples.len())];
        for (i, &x) in samples.iter().enumerate() {
            let prev = if i == 0 { 0.0 } else { samples[i - 1] as f64 };
            y[i] = if i == 0 {
                x as f64
            } else {
                x as f64 - c.preemphasis * prev
            };
        }

        let mut out = vec![0.0f64; t_n * dim]; // (T, C) in f64 until the end
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut power = vec![0.0; bins];
        let mut logmel = vec![0.0; m];
        for t in 0..t_n {
            let start = t * self.hop;
            input.fill(0.0);
            for ((v, &x), &w) in input
                .iter_mut()
                .zip(&y[start..start + self.frame])
                .zip(&self.window)
            {
                *v = x * w;
            }
            // The plan's lengths are its own, so this cannot fail.
            self.fft
                .process(&mut input, &mut spectrum)
                .expect("FFT buffers have the plan's lengths");
            let inv = 1.0 / self.n_fft as f64;
            for (p, s) in power.iter_mut().zip(&spectrum) {
                *p = s.norm_sqr() * inv;
            }
            for (j, l) in logmel.iter_mut().enumerate() {
                let e: f64 = self.filters[j * bins..(j + 1) * bins]
                    .iter()
                    .zip(&power)
                    .map(|(a, b)| a * b)
                    .sum();
                *l = e.max(c.log_floor).ln();
            }
            let row = &mut out[t * dim..t * dim + base];
            match c.kind {
                FeatureKind::LogMel => row.copy_from_slice(&logmel),
                FeatureKind::Mfcc => {
                    for (qi, v) in row.iter_mut().enumerate() {
                        *v = self.dct[qi * m..(qi + 1) * m]
                            .iter()
                            .zip(&logmel)
                            .map(|(a, b)| a * b)
                            .sum();
                    }
                    if c.energy {
                        row[0] = power.iter().sum::<f64>().max(c.log_floor).ln();
                    }
                }
            }
        }
        for order in 1..=c.deltas {
            delta_block(&mut out, t_n, dim, (order - 1) * base, base, c.delta_window);
        }
        if c.normalize == Normalize::Utterance {
            normalize_utterance(&mut out, t_n, dim);
        }
        let mut features = Features {
            frames: t_n,
            dim,
            data: out.into_iter().map(|v| v as f32).collect(),
        };
        // Applied to the f32 features, as `GlobalNorm::fit`'s caller applies it to the
        // training set: the same audio gives the same numbers either way.
        if let Some(g) = &c.global_norm {
            g.apply(&mut features)
                .expect("validate() checked the statistics' width");
        }
        features
    }
}

/// Writes the deltas of columns src..src+w of `x` (T, C) into columns src+w..src+2w.
fn delta_block(x: &mut [f64], t_n: usize, dim: usize, src: usize, w: usize, n: usize) {
    let denom = 2.0 * (1..=n).map(|i| (i * i) as f64).sum::<f64>();
    let at = |t: isize| t.clamp(0, t_n as isize - 1) as usize * dim;
    for t in 0..t_n as isize {
        for d in 0..w {
            let mut acc = 0.0;
            for k in 1..=n as isize {
                acc += k as f64 * (x[at(t + k) + src + d] - x[at(t - k) + src + d]);
            }
            x[t as usize * dim + src + w + d] = acc / denom;
        }
    }
}

/// Smallest standard deviation divided by, so a constant dimension stays finite (it is all
/// zeros after the mean is taken away anyway).
const MIN_STD: f64 = 1e-5;

fn normalize_utterance(x: &mut [f64], t_n: usize, dim: usize) {
    for d in 0..dim {
        let mean = (0..t_n).map(|t| x[t * dim + d]).sum::<f64>() / t_n as f64;
        let var = (0..t_n)
            .map(|t| (x[t * dim + d] - mean).powi(2))
            .sum::<f64>()
            / t_n as f64;
        let inv = 1.0 / var.sqrt().max(MIN_STD);
        for t in 0..t_n {
            x[t * dim + d] = (x[t * dim + d] - mean) * inv;
        }
    }
}

/// Running sums for a [`GlobalNorm`]: add every training utterance, then [`Self::finish`].
#[derive(Clone, Debug, Default)]
pub struct NormStats {
    dim: usize,
    frames: u64,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl NormStats {
    pub fn new(dim: usize) -> Self {
        NormStats {
            dim,
            frames: 0,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
        }
    }

    pub fn add(&mut self, f: &Features) -> Result<()> {
        if f.dim != self.dim {
            return Err(Error::Config(format!(
                "features of {} numbers per frame cannot join statistics of {}; extract all utterances with one configuration",
                f.dim, self.dim
            )));
        }
        for row in f.data.chunks_exact(self.dim) {
            for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(row) {
                *s += v as f64;
                *q += v as f64 * v as f64;
            }
        }
        self.frames += f.frames as u64;
        Ok(())
    }

    /// Mean and 1/std per dimension; an error when nothing was added.
    pub fn finish(&self) -> Result<GlobalNorm> {
        if self.frames == 0 {
            return Err(Error::Config(
                "cannot fit a global normaliser on no frames; give it training utterances".into(),
            ));
        }
        let n = self.frames as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let inv_std = self
            .sum_sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| 1.0 / (q / n - m * m).max(0.0).sqrt().max(MIN_STD))
            .collect();
        Ok(GlobalNorm { mean, inv_std })
    }
}

/// Mean/variance normalisation with statistics of a whole training set, stored with a model
/// (serde) so test audio is normalised as training audio was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalNorm {
    pub mean: Vec<f64>,
    pub inv_std: Vec<f64>,
}

impl GlobalNorm {
    /// Fits on `utterances`; see [`NormStats`] to stream them instead.
    pub fn fit<'a>(utterances: impl IntoIterator<Item = &'a Features>) -> Result<Self> {
        let mut stats: Option<NormStats> = None;
        for f in utterances {
            stats.get_or_insert_with(|| NormStats::new(f.dim)).add(f)?;
        }
        stats.unwrap_or_default().finish()
    }

    /// x ← (x - mean) / std, per dimension.
    pub fn apply(&self, f: &mut Features) -> Result<()> {
        if f.dim != self.mean.len() {
            return Err(Error::Config(format!(
                "the normaliser was fitted on features of {} numbers per frame but these have {}; \
                 extract with the configuration the model was trained with",
                self.mean.len(),
                f.dim
            )));
        }
        for row in f.data.chunks_exact_mut(f.dim) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                *v = ((*v as f64 - m) * s) as f32;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_counts_and_hann_window() {
        let x = FeatureExtractor::new(FeatureConfig::default()).unwrap();
        assert_eq!(x.config().frame_and_hop(), (200, 80));
        assert_eq!(x.n_fft, 256);
        assert_eq!(x.frames_for(0), 1);
        assert_eq!(x.frames_for(200), 1);
        assert_eq!(x.frames_for(201), 2);
        assert_eq!(x.frames_for(280), 2);
        assert_eq!(x.frames_for(281), 3);
        let h = FeatureExtractor::new(FeatureConfig {
            window: Window::Hann,
            ..FeatureConfig::default()
        })
        .unwrap();
        assert_eq!(h.window[0], 0.0);
        assert!((h.window[199] - 0.0).abs() < 1e-12);
    }

    #[test]
    fn sine_peaks_in_its_band() {
        // A 1 kHz tone: the log-mel band whose centre is nearest 1 kHz is the largest.
        let cfg = FeatureConfig {
            kind: FeatureKind::LogMel,
            deltas: 0,
            normalize: Normalize::None,
            ..FeatureConfig::default()
        };
        let x = FeatureExtractor::new(cfg).unwrap();
        let s: Vec<f32> = (0..8000)
            .map(|i| (2.0 * PI * 1000.0 * i as f64 / 8000.0).sin() as f32 * 0.5)
            .collect();
        let f = x.extract(&s);
        let row = f.frame(10);
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap();
        let centre = |j: usize| {
            let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(4000.0));
            mel_to_hz(lo + (j + 1) as f64 * (hi - lo) / 27.0)
        };
        assert!(
            (centre(best) - 1000.0).abs() < 120.0,
            "band {best} at {}",
            centre(best)
        );
    }

    #[test]
    fn utterance_and_global_normalisation() {
        let x = FeatureExtractor::new(FeatureConfig::default()).unwrap();
        let s: Vec<f32> = (0..4000)
            .map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * (i as f32 / 4000.0))
            .collect();
        let f = x.extract(&s);
        assert_eq!(f.dim, 39);
        for d in 0..f.dim {
            let col: Vec<f64> = (0..f.frames).map(|t| f.frame(t)[d] as f64).collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
                "dim {d}: {mean} {var}"
            );
        }
        let raw = FeatureExtractor::new(FeatureConfig {
            normalize: Normalize::None,
            ..FeatureConfig::default()
        })
        .unwrap();
        let mut a = raw.extract(&s);
        let mut b = raw.extract(&s[..2000]);
        let norm = GlobalNorm::fit([&a, &b]).unwrap();
        let json = serde_json::to_string(&norm).unwrap();
        let back: GlobalNorm = serde_json::from_str(&json).unwrap();
        assert_eq!(back, norm);
        back.apply(&mut a).unwrap();
        back.apply(&mut b).unwrap();
        let all: Vec<f64> = a
            .data
            .iter()
            .chain(&b.data)
            .step_by(39)
            .map(|&v| v as f64)
            .collect();
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        assert!(mean.abs() < 1e-4, "{mean}");
        let mut wrong = Features {
            frames: 1,
            dim: 3,
            data: vec![0.0; 3],
        };
        assert!(back
            .apply(&mut wrong)
            .unwrap_err()
            .to_string()
            .contains("39"));
        assert!(GlobalNorm::fit([]).is_err());

        // The extractor with fitted statistics gives what fitting and applying by hand gave,
        // and the settings (statistics included) survive serialisation.
        let fitted = FeatureConfig {
            normalize: Normalize::Global,
            global_norm: Some(norm.clone()),
            ..FeatureConfig::default()
        };
        let cfg: FeatureConfig =
            serde_json::from_str(&serde_json::to_string(&fitted).unwrap()).unwrap();
        assert_eq!(cfg, fitted);
        assert_eq!(cfg.unnormalized().normalize, Normalize::None);
        assert_eq!(FeatureExtractor::new(cfg).unwrap().extract(&s).data, a.data);
    }

    #[test]
    fn global_normalisation_needs_matching_statistics() {
        let global = FeatureConfig {
            normalize: Normalize::Global,
            ..FeatureConfig::default()
        };
        let e = global.validate().unwrap_err().to_string();
        assert!(e.contains("--norm global"), "{e}");
        let narrow = GlobalNorm {
            mean: vec![0.0; 13],
            inv_std: vec![1.0; 13],
        };
        let e = FeatureConfig {
            global_norm: Some(narrow.clone()),
            ..global.clone()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("13 and 13 numbers for frames of 39"), "{e}");
        let e = FeatureConfig {
            global_norm: Some(narrow),
            deltas: 0,
            ..FeatureConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("normalize is not global"), "{e}");
        let mut nan = GlobalNorm {
            mean: vec![0.0; 39],
            inv_std: vec![1.0; 39],
        };
        nan.inv_std[5] = f64::NAN;
        assert!(FeatureConfig {
            global_norm: Some(nan),
            ..global
        }
        .validate()
        .is_err());
    }

    #[test]
    fn bad_settings_say_what_to_do() {
        let e = FeatureExtractor::new(FeatureConfig {
            n_fft: Some(128),
            ..FeatureConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("use at least 256"), "{e}");
        let e = FeatureConfig {
            high_hz: Some(5000.0),
            ..FeatureConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("Nyquist"), "{e}");
        let cfg: FeatureConfig =
            serde_json::from_str(&serde_json::to_string(&FeatureConfig::default()).unwrap())
                .unwrap();
        assert_eq!(cfg, FeatureConfig::default());
    }
}
