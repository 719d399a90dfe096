//! Run-time choice of SIMD width for our element-wise kernels.
//!
//! The kernels are plain loops over slices, written so that the compiler vectorises them.
//! [`dispatch!`] compiles one such body three times on x86-64 (baseline SSE2, AVX2+FMA and
//! AVX-512) and picks the widest the CPU supports; other architectures get the baseline build
//! (NEON on aarch64 is part of its baseline), so one binary runs everywhere.

/// Defines `pub fn $name<T: Real>(args)` that runs `$body` compiled for the best instruction
/// set this CPU has.
#[macro_export]
macro_rules! dispatch {
    ($(#[$meta:meta])* pub fn $name:ident<T: Real>($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name<T: $crate::Real>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<T: $crate::Real>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512<T: $crate::Real>($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<T: $crate::Real>($($arg: $ty),*) { body($($arg),*) }
                match $crate::simd::level() {
                    // SAFETY: level() saw AVX-512F/VL, AVX2 and FMA on this CPU.
                    $crate::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: level() saw AVX2 and FMA on this CPU.
                    $crate::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Baseline,
    Avx2,
    Avx512,
}

/// The widest instruction set the kernels may use here; `FIRTH_SIMD=baseline|avx2` caps it
/// (for comparing paths, and for exact agreement between machines).
pub fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

fn detect() -> Level {
    let cap = std::env::var("FIRTH_SIMD").unwrap_or_default();
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let avx512 =
            avx2 && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
        match cap.as_str() {
            "baseline" => Level::Baseline,
            "avx2" if avx2 => Level::Avx2,
            _ if avx512 => Level::Avx512,
            _ if avx2 => Level::Avx2,
            _ => Level::Baseline,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = cap;
        Level::Baseline
    }
}
