//! Fused element-wise kernels for one time step of a recurrent cell, over a whole batch.
//!
//! Each kernel reads the gate pre-activations of one step (the input projection, already in
//! place, plus the recurrent projection `hp`) and writes the activated gates and the new state,
//! so the step costs one small GEMM plus one pass over memory. Rows are split into per-gate
//! slices of equal length so the compiler can drop bounds checks and vectorise the loops.

use crate::{dispatch, Real};

dispatch! {
    /// LSTM step (gate order i, f, g, o):
    /// i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o),
    /// c = f ⊙ c_prev + i ⊙ g, h = o ⊙ tanh(c).
    /// `gates` (B, 4H) holds x·W_x + b on entry and the activated gates on exit; `hp` (B, 4H)
    /// is h_prev·W_h.
    pub fn lstm_forward<T: Real>(
        gates: &mut [T],
        hp: &[T],
        c_prev: &[T],
        c: &mut [T],
        tanh_c: &mut [T],
        h: &mut [T],
        hidden: usize,
    ) {
        let n = hidden;
        for ((((g, hp), cp), (c, tc)), h) in gates
            .chunks_exact_mut(4 * n)
            .zip(hp.chunks_exact(4 * n))
            .zip(c_prev.chunks_exact(n))
            .zip(c.chunks_exact_mut(n).zip(tanh_c.chunks_exact_mut(n)))
            .zip(h.chunks_exact_mut(n))
        {
            let (gi, rest) = g.split_at_mut(n);
            let (gf, rest) = rest.split_at_mut(n);
            let (gg, go) = rest.split_at_mut(n);
            lstm_forward_row(gi, gf, gg, go, hp, cp, c, tc, h);
        }
    }
}

/// One batch row of [`lstm_forward`]. Separate, with every slice cut to the same length first,
/// so the compiler sees no aliasing and no bounds checks and vectorises the loop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_forward_row<T: Real>(
    gi: &mut [T],
    gf: &mut [T],
    gg: &mut [T],
    go: &mut [T],
    hp: &[T],
    cp: &[T],
    c: &mut [T],
    tc: &mut [T],
    h: &mut [T],
) {
    let n = h.len();
    let (gi, gf, gg, go) = (&mut gi[..n], &mut gf[..n], &mut gg[..n], &mut go[..n]);
    let (hi, hf, hg, ho) = (
        &hp[..n],
        &hp[n..2 * n],
        &hp[2 * n..3 * n],
        &hp[3 * n..4 * n],
    );
    let (cp, c, tc) = (&cp[..n], &mut c[..n], &mut tc[..n]);
    for j in 0..n {
        let i = (gi[j] + hi[j]).sigmoid();
        let f = (gf[j] + hf[j]).sigmoid();
        let gv = (gg[j] + hg[j]).tanh();
        let o = (go[j] + ho[j]).sigmoid();
        let cv = f * cp[j] + i * gv;
        let t = cv.tanh();
        gi[j] = i;
        gf[j] = f;
        gg[j] = gv;
        go[j] = o;
        c[j] = cv;
        tc[j] = t;
        h[j] = o * t;
    }
}

dispatch! {
    /// LSTM step backward. With dh the total gradient reaching h_t and dc the gradient reaching
    /// c_t from step t+1:
    /// dc += dh ⊙ o ⊙ (1 - tanh²c); d a_o = dh ⊙ tanh c ⊙ o(1-o);
    /// d a_i = dc ⊙ g ⊙ i(1-i); d a_g = dc ⊙ i ⊙ (1-g²); d a_f = dc ⊙ c_prev ⊙ f(1-f);
    /// and the gradient passed to c_{t-1} is dc ⊙ f (written back into `dc`).
    pub fn lstm_backward<T: Real>(
        gates: &[T],
        c_prev: &[T],
        tanh_c: &[T],
        dh: &[T],
        dc: &mut [T],
        dgates: &mut [T],
        hidden: usize,
    ) {
        let n = hidden;
        for ((((g, cp), tc), (dh, dc)), dg) in gates
            .chunks_exact(4 * n)
            .zip(c_prev.chunks_exact(n))
            .zip(tanh_c.chunks_exact(n))
            .zip(dh.chunks_exact(n).zip(dc.chunks_exact_mut(n)))
            .zip(dgates.chunks_exact_mut(4 * n))
        {
            let (gi, gf, gg, go) = (&g[..n], &g[n..2 * n], &g[2 * n..3 * n], &g[3 * n..4 * n]);
            let (di, rest) = dg.split_at_mut(n);
            let (df, rest) = rest.split_at_mut(n);
            let (dgg, dgo) = rest.split_at_mut(n);
            let (cp, tc, dh, dc, dgo) = (&cp[..n], &tc[..n], &dh[..n], &mut dc[..n], &mut dgo[..n]);
            for j in 0..n {
                let (i, f, gv, o) = (gi[j], gf[j], gg[j], go[j]);
                let t = tc[j];
                let d = dc[j] + dh[j] * o * (T::ONE - t * t);
                dgo[j] = dh[j] * t * o * (T::ONE - o);
                di[j] = d * gv * i * (T::ONE - i);
                dgg[j] = d * i * (T::ONE - gv * gv);
                df[j] = d * cp[j] * f * (T::ONE - f);
                dc[j] = d * f;
            }
        }
    }
}

dispatch! {
    /// GRU step, as PyTorch defines it (gate order r, z, n):
    /// r = σ(a_r + hp_r + bh_r), z = σ(a_z + hp_z + bh_z), m = hp_n + bh_n,
    /// n = tanh(a_n + r ⊙ m), h = (1 - z) ⊙ n + z ⊙ h_prev.
    /// `gates` (B, 3H) holds x·W_x + b_x on entry and r, z, n on exit; `hn` (B, H) keeps m.
    pub fn gru_forward<T: Real>(
        gates: &mut [T],
        hp: &[T],
        bh: &[T],
        h_prev: &[T],
        hn: &mut [T],
        h: &mut [T],
        hidden: usize,
    ) {
        let n = hidden;
        let (br, bz, bn) = (&bh[..n], &bh[n..2 * n], &bh[2 * n..3 * n]);
        for (((g, hp), (hprev, m)), h) in gates
            .chunks_exact_mut(3 * n)
            .zip(hp.chunks_exact(3 * n))
            .zip(h_prev.chunks_exact(n).zip(hn.chunks_exact_mut(n)))
            .zip(h.chunks_exact_mut(n))
        {
            let (gr, rest) = g.split_at_mut(n);
            let (gz, gn) = rest.split_at_mut(n);
            let (hr, hz, hnn) = (&hp[..n], &hp[n..2 * n], &hp[2 * n..3 * n]);
            let (hprev, m, h, gn) = (&hprev[..n], &mut m[..n], &mut h[..n], &mut gn[..n]);
            for j in 0..n {
                let r = (gr[j] + hr[j] + br[j]).sigmoid();
                let z = (gz[j] + hz[j] + bz[j]).sigmoid();
                let mv = hnn[j] + bn[j];
                let nv = (gn[j] + r * mv).tanh();
                gr[j] = r;
                gz[j] = z;
                gn[j] = nv;
                m[j] = mv;
                h[j] = (T::ONE - z) * nv + z * hprev[j];
            }
        }
    }
}

dispatch! {
    /// GRU step backward. With dh the total gradient reaching h_t:
    /// dn = dh ⊙ (1-z) ⊙ (1-n²) (= d a_n), dz = dh ⊙ (h_prev - n) ⊙ z(1-z),
    /// dm = dn ⊙ r, dr = dn ⊙ m ⊙ r(1-r). The input side gets (dr, dz, dn), the recurrent
    /// side (dr, dz, dm); `dh_prev` receives the direct path dh ⊙ z (the rest comes through W_h).
    pub fn gru_backward<T: Real>(
        gates: &[T],
        hn: &[T],
        h_prev: &[T],
        dh: &[T],
        dgx: &mut [T],
        dgh: &mut [T],
        dh_prev: &mut [T],
        hidden: usize,
    ) {
        let n = hidden;
        for ((((g, m), hprev), (dh, dhp)), (dgx, dgh)) in gates
            .chunks_exact(3 * n)
            .zip(hn.chunks_exact(n))
            .zip(h_prev.chunks_exact(n))
            .zip(dh.chunks_exact(n).zip(dh_prev.chunks_exact_mut(n)))
            .zip(dgx.chunks_exact_mut(3 * n).zip(dgh.chunks_exact_mut(3 * n)))
        {
            let (gr, gz, gn) = (&g[..n], &g[n..2 * n], &g[2 * n..3 * n]);
            let (xr, rest) = dgx.split_at_mut(n);
            let (xz, xn) = rest.split_at_mut(n);
            let (hr, rest) = dgh.split_at_mut(n);
            let (hz, hn_) = rest.split_at_mut(n);
            let (m, hprev, dh, dhp, xn, hn_) =
                (&m[..n], &hprev[..n], &dh[..n], &mut dhp[..n], &mut xn[..n], &mut hn_[..n]);
            for j in 0..n {
                let (r, z, nv) = (gr[j], gz[j], gn[j]);
                let d = dh[j];
                let da_n = d * (T::ONE - z) * (T::ONE - nv * nv);
                let da_z = d * (hprev[j] - nv) * z * (T::ONE - z);
                let da_r = da_n * m[j] * r * (T::ONE - r);
                xr[j] = da_r;
                xz[j] = da_z;
                xn[j] = da_n;
                hr[j] = da_r;
                hz[j] = da_z;
                hn_[j] = da_n * r;
                dhp[j] = d * z;
            }
        }
    }
}

dispatch! {
    /// Elman step: h = act(a + hp), with tanh or the lecture's σ. `pre` (B, H) holds x·W_x + b.
    pub fn rnn_forward<T: Real>(pre: &[T], hp: &[T], h: &mut [T], sigmoid: bool) {
        let h = &mut h[..pre.len()];
        let hp = &hp[..pre.len()];
        if sigmoid {
            for j in 0..pre.len() {
                h[j] = (pre[j] + hp[j]).sigmoid();
            }
        } else {
            for j in 0..pre.len() {
                h[j] = (pre[j] + hp[j]).tanh();
            }
        }
    }
}

dispatch! {
    /// Elman step backward: d a = dh ⊙ act'(a), with tanh' = 1 - h² and σ' = h(1 - h).
    pub fn rnn_backward<T: Real>(h: &[T], dh: &[T], dpre: &mut [T], sigmoid: bool) {
        let dh = &dh[..h.len()];
        let dpre = &mut dpre[..h.len()];
        if sigmoid {
            for j in 0..h.len() {
                dpre[j] = dh[j] * h[j] * (T::ONE - h[j]);
            }
        } else {
            for j in 0..h.len() {
                dpre[j] = dh[j] * (T::ONE - h[j] * h[j]);
            }
        }
    }
}

dispatch! {
    /// y += b for every row of y (rows of length b.len()).
    pub fn add_bias<T: Real>(y: &mut [T], b: &[T]) {
        for row in y.chunks_exact_mut(b.len()) {
            for (v, &bv) in row.iter_mut().zip(b) {
                *v += bv;
            }
        }
    }
}

dispatch! {
    /// db += column sums of dy (rows of length db.len()).
    pub fn sum_rows_into<T: Real>(dy: &[T], db: &mut [T]) {
        for row in dy.chunks_exact(db.len()) {
            for (d, &v) in db.iter_mut().zip(row) {
                *d += v;
            }
        }
    }
}

dispatch! {
    /// y[i] += x[i].
    pub fn add_into<T: Real>(y: &mut [T], x: &[T]) {
        for (a, &b) in y.iter_mut().zip(x) {
            *a += b;
        }
    }
}
