//! libslp: the microthreading model of Stackless Python for C and C++ hosts.
//!
//! Layout: the Rust core (`stack`, `overflow`, `tasklet`, `sched/`, `channel`, `introspect`,
//! `status`, `arch/`) knows nothing of C; `ffi` is the thin `extern "C"` layer that validates arguments, catches panics and
//! carries the documentation that cbindgen copies into `include/slp.h`.

mod arch;
pub mod channel;
pub mod ffi;
pub mod introspect;
pub mod lock;
mod mem;
pub mod overflow;
pub mod sched;
pub mod signal;
pub mod thread;
pub mod till;
pub mod stack;
pub mod status;
pub mod tasklet;
pub mod timer;
pub mod watchdog;
