//! Sample-rate conversion by band-limited interpolation with a Kaiser-windowed sinc.
//!
//! Output sample m sits at time m / r_out, which is input position x_m = m · r_in / r_out, and
//! is the input convolved with a low-pass kernel there:
//!
//! ```text
//! y_m = Σ_j x_j h(x_m - j),   h(d) = 2 f_c sinc(2 f_c d) · w(d / W),   sinc(u) = sin(πu) / (πu)
//! ```
//!
//! f_c is the cutoff in cycles per input sample: a little under the lower of the two Nyquist
//! frequencies, f_c = ROLLOFF · ½ · min(1, r_out / r_in), so that downsampling removes what
//! would alias. 2 f_c sinc(2 f_c d) sums to 1 over the integers, so the pass band keeps its
//! amplitude. The window w is Kaiser's, I₀(β √(1 - u²)) / I₀(β), over a half-width of
//! W = ZEROS / (2 f_c) input samples (ZEROS zero crossings of the sinc on each side).
//!
//! With r_out / r_in = L / M in lowest terms, x_m = (m M div L) + (m M mod L) / L: only L
//! fractional offsets occur, so their kernels are computed once (the polyphase form) unless L is
//! so large that the table would not pay (rates with no common factor), when each output
//! computes its own. Samples beyond either end count as zero.

/// Zero crossings of the sinc kept on each side.
const ZEROS: f64 = 32.0;
/// Kaiser's β: about 86 dB of stop-band attenuation.
const BETA: f64 = 8.6;
/// The cutoff as a fraction of the lower Nyquist frequency: the transition band ends near it.
const ROLLOFF: f64 = 0.92;
/// Largest kernel table (phases × taps) kept; beyond it kernels are computed per output.
const MAX_TABLE: usize = 1 << 20;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The modified Bessel function I₀ by its power series Σ ((x/2)^k / k!)², which converges fast
/// for the arguments a Kaiser window uses (|x| ≤ β).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-17 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// A converter from one rate to another; build once, apply to many signals.
#[derive(Clone, Debug)]
pub struct Resampler {
    up: u64,
    down: u64,
    cutoff: f64,
    half_width: f64,
    /// Taps per phase: input offsets k from `first` to `first + taps - 1`.
    taps: usize,
    first: i64,
    /// (L, taps) kernels, or empty when they are computed per output.
    table: Vec<f64>,
}

impl Resampler {
    /// Panics when a rate is 0 (a WAV with rate 0 is refused when read).
    pub fn new(from: u32, to: u32) -> Resampler {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        let g = gcd(from as u64, to as u64);
        let (up, down) = (to as u64 / g, from as u64 / g);
        let cutoff = ROLLOFF * 0.5 * (up as f64 / down as f64).min(1.0);
        let half_width = ZEROS / (2.0 * cutoff);
        // Offsets d = frac - k with frac in [0, 1) and |d| < W: k from -floor(W) to ceil(W).
        let first = -(half_width.floor() as i64);
        let taps = (half_width.ceil() as i64 - first + 1) as usize;
        let mut r = Resampler {
            up,
            down,
            cutoff,
            half_width,
            taps,
            first,
            table: Vec::new(),
        };
        if (up as usize).saturating_mul(taps) <= MAX_TABLE {
            let mut table = vec![0.0; up as usize * taps];
            for p in 0..up as usize {
                r.kernel(p as f64 / up as f64, &mut table[p * taps..(p + 1) * taps]);
            }
            r.table = table;
        }
        r
    }

    /// h(frac - k) for the `taps` offsets k from `first`.
    fn kernel(&self, frac: f64, out: &mut [f64]) {
        let fc = self.cutoff;
        let i0b = bessel_i0(BETA);
        for (i, h) in out.iter_mut().enumerate() {
            let d = frac - (self.first + i as i64) as f64;
            let u = d / self.half_width;
            *h = if u.abs() >= 1.0 {
                0.0
            } else {
                let a = std::f64::consts::PI * 2.0 * fc * d;
                let sinc = if a.abs() < 1e-12 { 1.0 } else { a.sin() / a };
                2.0 * fc * sinc * bessel_i0(BETA * (1.0 - u * u).sqrt()) / i0b
            };
        }
    }

    /// Number of output samples for `n` input samples: ⌈n L / M⌉.
    pub fn output_len(&self, n: usize) -> usize {
        ((n as u64 * self.up).div_ceil(self.down)) as usize
    }

    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        if self.up == self.down {
            return x.to_vec();
        }
        let n_out = self.output_len(x.len());
        let mut y = Vec::with_capacity(n_out);
        let mut scratch = vec![0.0; if self.table.is_empty() { self.taps } else { 0 }];
        for m in 0..n_out as u64 {
            let pos = m * self.down;
            let (base, phase) = ((pos / self.up) as i64, (pos % self.up) as usize);
            let h: &[f64] = if self.table.is_empty() {
                self.kernel(phase as f64 / self.up as f64, &mut scratch);
                &scratch
            } else {
                &self.table[phase * self.taps..(phase + 1) * self.taps]
            };
            // Input index j = base + k; keep the taps whose j is inside the signal.
            let j0 = base + self.first;
            let lo = (-j0).max(0) as usize;
            let hi = ((x.len() as i64 - j0).max(0) as usize).min(self.taps);
            let mut acc = 0.0;
            for i in lo..hi {
                acc += x[(j0 + i as i64) as usize] as f64 * h[i];
            }
            y.push(acc as f32);
        }
        y
    }
}

/// `x` at `from` Hz converted to `to` Hz (a copy when the rates are equal).
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    Resampler::new(from, to).apply(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f32> {
        let n = (secs * rate as f64) as usize;
        (0..n)
            .map(|i| (amp * (2.0 * PI * freq * i as f64 / rate as f64).sin()) as f32)
            .collect()
    }

    /// Largest difference from the ideal sine at `rate`, away from the edges, where the kernel
    /// runs off the signal.
    fn worst_error(y: &[f32], freq: f64, rate: u32, amp: f64) -> f64 {
        let ideal = sine(freq, rate, y.len() as f64 / rate as f64 + 1.0, amp);
        let edge = rate as usize / 20;
        y[edge..y.len() - edge]
            .iter()
            .zip(&ideal[edge..])
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max)
    }

    #[test]
    fn sine_keeps_frequency_and_amplitude() {
        // 44.1 kHz → 8 kHz (L/M = 80/441), 8 kHz → 16 kHz (2/1), 48 kHz → 8 kHz (1/6),
        // and 22.05 kHz → 16 kHz (320/441).
        for (from, to, f) in [
            (44100, 8000, 440.0),
            (8000, 16000, 1000.0),
            (48000, 8000, 3000.0),
            (22050, 16000, 2500.0),
        ] {
            let x = sine(f, from, 1.0, 0.5);
            let y = resample(&x, from, to);
            assert_eq!(y.len(), Resampler::new(from, to).output_len(x.len()));
            let e = worst_error(&y, f, to, 0.5);
            assert!(e < 1e-3, "{from}→{to} at {f} Hz: error {e}");
        }
    }

    #[test]
    fn what_would_alias_is_removed() {
        // 5 kHz is above the 4 kHz Nyquist frequency of the target: it must not fold to 3 kHz.
        let y = resample(&sine(5000.0, 16000, 1.0, 0.5), 16000, 8000);
        let mid = &y[400..y.len() - 400];
        let rms = (mid.iter().map(|v| (v * v) as f64).sum::<f64>() / mid.len() as f64).sqrt();
        assert!(rms < 1e-3, "rms {rms}");
    }

    #[test]
    fn coprime_rates_without_a_table() {
        // 44100 and 7919 share no factor: L = 7919 phases of ~390 taps, too many to tabulate.
        let r = Resampler::new(44100, 7919);
        assert!(r.table.is_empty());
        let x = sine(300.0, 44100, 0.5, 0.5);
        let e = worst_error(&r.apply(&x), 300.0, 7919, 0.5);
        assert!(e < 1e-3, "{e}");
        assert_eq!(resample(&[], 44100, 8000), Vec::<f32>::new());
        assert_eq!(resample(&[0.5], 8000, 8000), vec![0.5]);
    }
}
