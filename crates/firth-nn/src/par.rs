//! Splitting element-wise work over the thread pool.
//!
//! Only large buffers are split (handing work to another thread costs microseconds); each piece
//! is a whole number of rows and every element is computed by the same code whichever thread
//! runs it, so results do not depend on the number of threads.

use rayon::prelude::*;
use std::cell::Cell;

thread_local! {
    static SEQUENTIAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every kernel and matrix product of this thread kept on this thread.
/// Data-parallel training gives each pool thread a model replica of its own; splitting a
/// replica's work again would only add hand-over costs and contend for the same cores.
pub fn sequential<R>(f: impl FnOnce() -> R) -> R {
    let before = SEQUENTIAL.with(|s| s.replace(true));
    let r = f();
    SEQUENTIAL.with(|s| s.set(before));
    r
}

/// Threads that work on this thread's kernels: the pool's size, or 1 inside [`sequential`].
pub fn threads() -> usize {
    if SEQUENTIAL.with(|s| s.get()) {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Sizes the global thread pool that the matrix products and data-parallel training use.
///
/// Rayon builds its global pool once per process, so only the first request takes effect
/// (as does the default size, if anything ran on the pool first). Asking again for the size
/// the pool already has is fine; asking for a different one is an error, instead of silently
/// running on the old size.
pub fn set_global_threads(threads: usize) -> anyhow::Result<()> {
    if threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
    // `current_num_threads` outside any pool reports the global pool's size.
    let size = rayon::current_num_threads();
    if built.is_err() && size != threads {
        anyhow::bail!(
            "--threads {threads}: this process already runs its thread pool with {size} \
             threads, and a pool can only be sized once per process; run the second job \
             as a separate command, or give it --threads {size}"
        );
    }
    Ok(())
}

/// Below this many elements the work stays on the calling thread.
pub const MIN_PARALLEL: usize = 1 << 16;

/// Calls `f(first_row, rows)` on pieces of `buf`, whose rows have length `row`, in parallel
/// when the buffer is large and the pool has more than one thread.
pub fn for_rows<T: Send>(buf: &mut [T], row: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let threads = threads();
    let rows = buf.len() / row.max(1);
    if threads == 1 || buf.len() < MIN_PARALLEL || rows < 2 {
        f(0, buf);
        return;
    }
    let per = rows.div_ceil(threads * 4).max(1);
    buf.par_chunks_mut(per * row)
        .enumerate()
        .for_each(|(i, chunk)| f(i * per, chunk));
}

/// Like [`for_rows`] over two buffers with the same number of rows (of lengths `ra` and `rb`).
pub fn for_rows2<A: Send, B: Send>(
    a: &mut [A],
    ra: usize,
    b: &mut [B],
    rb: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    let threads = threads();
    let rows = a.len() / ra.max(1);
    if threads == 1 || a.len() < MIN_PARALLEL || rows < 2 {
        f(0, a, b);
        return;
    }
    let per = rows.div_ceil(threads * 4).max(1);
    a.par_chunks_mut(per * ra)
        .zip(b.par_chunks_mut(per * rb))
        .enumerate()
        .for_each(|(i, (x, y))| f(i * per, x, y));
}
