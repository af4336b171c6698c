//! Build script: generates `include/slp.h` with cbindgen and checks it against the checked-in
//! copy, and gives the shared library its SONAME.
//!
//! The checked-in header is the contract users compile against, so a build whose generated
//! header differs from it fails. After an intended API change, regenerate it with
//! `SLP_BLESS_HEADER=1 cargo build` and commit the result.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let major: u32 = env::var("CARGO_PKG_VERSION_MAJOR").unwrap().parse().unwrap();
    let minor: u32 = env::var("CARGO_PKG_VERSION_MINOR").unwrap().parse().unwrap();
    let patch: u32 = env::var("CARGO_PKG_VERSION_PATCH").unwrap().parse().unwrap();
    let number = major * 10000 + minor * 100 + patch;

    // The SONAME carries the major version only: ABI-compatible releases keep it.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libslp.so.{major}");
    }
    println!("cargo:rustc-env=SLP_VERSION_NUMBER={number}");

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/slp.h");
    println!("cargo:rerun-if-env-changed=SLP_BLESS_HEADER");

    let version_defines = format!(
        "\n/** libslp version, from Cargo.toml. `slp_version()` returns SLP_VERSION_NUMBER of the\n    library actually loaded, which may differ from the header a program was built with. */\n\
         #define SLP_VERSION_MAJOR {major}\n#define SLP_VERSION_MINOR {minor}\n#define SLP_VERSION_PATCH {patch}\n\
         #define SLP_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         /** MAJOR * 10000 + MINOR * 100 + PATCH. */\n#define SLP_VERSION_NUMBER {number}\n"
    );
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let generated = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .with_after_include(version_defines)
        .generate()
        .expect("cbindgen could not generate include/slp.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("slp.h");
    generated.write_to_file(&out);
    let fresh = fs::read(&out).unwrap();

    let checked_in = crate_dir.join("include").join("slp.h");
    let current = fs::read(&checked_in).unwrap_or_default();
    if fresh != current {
        if env::var_os("SLP_BLESS_HEADER").is_some() {
            fs::write(&checked_in, &fresh).expect("write include/slp.h");
        } else {
            panic!(
                "include/slp.h differs from what cbindgen generates from src/ (see {}).\n\
                 If the API change is intended, run `SLP_BLESS_HEADER=1 cargo build` and commit \
                 include/slp.h.",
                out.display()
            );
        }
    }
}
