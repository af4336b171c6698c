//! Fuzz target: the model-based test of tests/model.rs driven by fuzz bytes. The bytes choose
//! the case (channels, tasklet programs, main operations; see tests/model/case.rs), which runs
//! against the reference model and against libslp; any difference panics with the shrunk case
//! printed. Every case tears its scheduler down and releases everything it made.
//!
//! Only this thread uses libslp (deadlock detection counts every participating thread).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/model/case.rs"]
mod case;
#[allow(dead_code)]
#[path = "../../tests/model/check.rs"]
mod check;
#[allow(dead_code)]
#[path = "../../tests/model/real.rs"]
mod real;
#[allow(dead_code)]
#[path = "../../tests/model/spec.rs"]
mod spec;

fuzz_target!(|data: &[u8]| {
    let case = case::gen_case(&mut case::Bytes::new(data));
    if let Err(f) = check::check(&case) {
        let (small, _) = check::shrink(&case, &f);
        let report = match check::check(&small) {
            Err(g) => g.report(&small),
            Ok(()) => f.report(&case),
        };
        panic!("libslp and the model disagree:\n{report}");
    }
});
