//! libslp: the microthreading model of Stackless Python for C and C++ hosts.
//!
//! Layout: the Rust core (`stack`, `overflow`, `tasklet`, `scheduler`, `channel`, `status`) knows nothing
//! of C; `ffi` is the thin `extern "C"` layer that validates arguments, catches panics and
//! carries the documentation that cbindgen copies into `include/slp.h`.

pub mod channel;
pub mod ffi;
pub mod overflow;
pub mod wake;
pub mod scheduler;
pub mod stack;
pub mod status;
pub mod tasklet;
