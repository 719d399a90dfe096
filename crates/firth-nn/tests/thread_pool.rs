//! The global thread pool can be sized once per process; a later, different request is an
//! error instead of being silently ignored. (Its own test binary: the pool is per process.)

use firth_nn::par::set_global_threads;

#[test]
fn a_second_different_size_is_refused() {
    assert!(set_global_threads(0).is_err(), "zero threads is refused");
    set_global_threads(2).unwrap();
    assert_eq!(rayon::current_num_threads(), 2);
    // The same size again is what the pool has: fine.
    set_global_threads(2).unwrap();
    let err = set_global_threads(3).unwrap_err().to_string();
    assert!(
        err.contains("--threads 3") && err.contains("already runs its thread pool with 2"),
        "{err}"
    );
    assert_eq!(rayon::current_num_threads(), 2, "the pool keeps its size");
}
