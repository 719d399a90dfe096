//! firth's neural core.
//!
//! The design follows llm.c: every layer has a `forward` that caches what its `backward`
//! needs, and a `backward` that *accumulates* (`+=`) into parameter gradients and into the
//! gradient of its input. Activations live in contiguous, time-major buffers whose shapes are
//! written next to them, e.g. `// (T, B, 4H)`. Layers are generic over [`Real`] so that the
//! same code runs in f32 for training and in f64 for the finite-difference gradient checks.
//!
//! Matrix products go through [`gemm::gemm`] (faer underneath: it measured fastest on our
//! LSTM-sized shapes, see `docs/gemm.md`), except a recurrent step's product over a few
//! sequences, which has a kernel of its own ([`few_rows`]). The element-wise work around them (gates, softmax)
//! is ours, written over slices so the compiler vectorises it, and compiled for AVX2/AVX-512
//! as well as the baseline so the best path is picked at run time ([`simd`]).

pub mod attention;
pub mod checkpoint;
pub mod crf;
pub mod ctc;
pub mod dropout;
pub mod embedding;
pub mod few_rows;
pub mod gemm;
pub mod gradcheck;
pub mod kernels;
pub mod linear;
pub mod optim;
pub mod par;
pub mod param;
pub mod pooling;
pub mod real;
pub mod recurrent;
pub mod replicas;
pub mod rng;
pub mod seq;
pub mod simd;
pub mod softmax;

pub use gemm::Gemm;
pub use param::{Param, ParamSet};
pub use real::Real;
pub use recurrent::CellKind;
pub use rng::Rng;
