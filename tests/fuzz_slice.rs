//! A short fixed-seed slice of the fuzzer (`examples/fuzz.rs`): the same engine, so a
//! regression that the long runs would find at once fails CI too. Deterministic: seed 1,
//! cases 0..3000.

#[path = "../examples/shared/fuzz.rs"]
mod fuzz;

#[test]
fn fixed_seed_slice_finds_nothing() {
    let mut report = fuzz::Report::default();
    fuzz::run(1, 0, 3000, &mut report);
    if let Some(failure) = report.failure {
        panic!("{failure}");
    }
    assert_eq!(report.cases, 3000);
    assert!(report.shapes.len() > 100, "{} shapes", report.shapes.len());
}
