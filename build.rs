//! Build script: generates `include/slp.h` with cbindgen and checks it against the checked-in
//! copy, and gives the shared library its SONAME.
//!
//! cbindgen cannot expand macros, so the status codes, which the `status_table!` invocation in
//! `src/status.rs` defines, are read from that table here (a small, strict line parser) and
//! emitted as the documented `enum slp_status_code`.
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
    let status_src = crate_dir.join("src").join("status.rs");
    let status_text = fs::read_to_string(&status_src).expect("src/status.rs is readable");
    let rows = parse_status_table(&status_text).unwrap_or_else(|e| {
        panic!("{}:{e}", status_src.display());
    });
    let after_include = format!("{version_defines}\n{}", status_enum(&rows));

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let generated = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .with_after_include(after_include)
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

/// One row of the status table in src/status.rs.
struct StatusRow {
    doc: Vec<String>,
    value: i32,
    c_name: String,
}

/// The status table's rows, from the `status_table! {` line to the closing `}` line. Inside it:
/// blank lines, `//` comments, `/// doc` lines, and rows `NAME = VALUE => SLP_NAME, "message";`
/// each on one line and preceded by at least one doc line. Anything else is an error
/// ("LINE: why"), as are duplicate names or values, positive values and a C name other than
/// `SLP_` + NAME.
fn parse_status_table(src: &str) -> Result<Vec<StatusRow>, String> {
    let lines: Vec<&str> = src.lines().collect();
    let starts: Vec<usize> =
        (0..lines.len()).filter(|&i| lines[i].trim() == "status_table! {").collect();
    let start = match starts[..] {
        [i] => i,
        [] => return Err("0: no `status_table! {` line (the status table) found".into()),
        _ => return Err(format!("{}: more than one `status_table! {{` line", starts[1] + 1)),
    };
    let mut rows: Vec<StatusRow> = Vec::new();
    let mut doc: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let n = i + 1;
        let t = line.trim();
        if t == "}" {
            if !doc.is_empty() {
                return Err(format!("{n}: doc comment without a status row after it"));
            }
            if rows.is_empty() {
                return Err(format!("{n}: the status table is empty"));
            }
            return Ok(rows);
        }
        if let Some(d) = t.strip_prefix("///") {
            let d = d.strip_prefix(' ').unwrap_or(d).trim_end();
            if d.contains("*/") || d.contains("/*") {
                return Err(format!("{n}: a status doc line must not contain `/*` or `*/`"));
            }
            doc.push(d.to_string());
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        if t.is_empty() {
            if !doc.is_empty() {
                return Err(format!("{n}: blank line between a status's doc and its row"));
            }
            continue;
        }
        let bad = |why: &str| {
            format!(
                "{n}: cannot read status table row `{t}`: {why}\n\
                 (expected `/// doc` lines, then `NAME = VALUE => SLP_NAME, \"message\";` on one line)"
            )
        };
        let tokens = tokenize(t).map_err(|e| bad(&e))?;
        let (name, value, c_name, message) = match &tokens[..] {
            [Tok::Ident(name), Tok::Punct("="), Tok::Int(v), Tok::Punct("=>"), Tok::Ident(c), Tok::Punct(","), Tok::Str(m), Tok::Punct(";")] => {
                (name, *v, c, m)
            }
            _ => return Err(bad("not of the form NAME = VALUE => SLP_NAME, \"message\";")),
        };
        if doc.is_empty() {
            return Err(bad("no `///` doc line before the row"));
        }
        if *c_name != format!("SLP_{name}") {
            return Err(bad(&format!("the C name of {name} must be SLP_{name}")));
        }
        if value > 0 {
            return Err(bad("library statuses are 0 or negative (positive values are user codes)"));
        }
        if message.is_empty() {
            return Err(bad("empty message"));
        }
        if let Some(r) = rows.iter().find(|r| r.value == value) {
            return Err(bad(&format!("value {value} is already {}", r.c_name)));
        }
        if rows.iter().any(|r| &r.c_name == c_name) {
            return Err(bad(&format!("{c_name} appears twice")));
        }
        rows.push(StatusRow { doc: std::mem::take(&mut doc), value, c_name: c_name.clone() });
    }
    Err(format!("{}: the status table starting here has no closing `}}` line", start + 1))
}

enum Tok {
    Ident(String),
    Int(i32),
    Str(String),
    Punct(&'static str),
}

/// Splits a row into identifiers, integers (optionally negative), plain string literals (no
/// escapes) and the punctuation `=`, `=>`, `,`, `;`.
fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b'\t' {
            i += 1;
        } else if c.is_ascii_uppercase() {
            let j = i + b[i..]
                .iter()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
                .count();
            out.push(Tok::Ident(s[i..j].to_string()));
            i = j;
        } else if c == b'-' || c.is_ascii_digit() {
            let j = i + 1 + b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let v = s[i..j].parse().map_err(|_| format!("bad integer `{}`", &s[i..j]))?;
            out.push(Tok::Int(v));
            i = j;
        } else if c == b'"' {
            let len = s[i + 1..].find('"').ok_or("unterminated string")?;
            let m = &s[i + 1..i + 1 + len];
            if m.contains('\\') {
                return Err("escapes are not allowed in the message".into());
            }
            out.push(Tok::Str(m.to_string()));
            i += len + 2;
        } else if s[i..].starts_with("=>") {
            out.push(Tok::Punct("=>"));
            i += 2;
        } else if let Some(p) = ["=", ",", ";"].into_iter().find(|p| s[i..].starts_with(p)) {
            out.push(Tok::Punct(p));
            i += 1;
        } else {
            let ch = s[i..].chars().next().unwrap();
            return Err(format!("unexpected `{ch}` (names are upper case: A-Z, 0-9, _)"));
        }
    }
    Ok(out)
}

/// The header's status block: `enum slp_status_code`, each constant with its doc comment,
/// in cbindgen's doxygen style.
fn status_enum(rows: &[StatusRow]) -> String {
    let mut s = String::from(
        "/**\n\
         \x20* The status codes libslp defines: 0 on success, negative library errors (never\n\
         \x20* renumbered). Calls return them as slp_status (int32_t), not as this enum type;\n\
         \x20* positive slp_status values are user exception codes. slp_status_str() describes each.\n\
         \x20*/\n\
         enum slp_status_code {\n",
    );
    for r in rows {
        s.push_str("  /**\n");
        for d in &r.doc {
            if d.is_empty() {
                s.push_str("   *\n");
            } else {
                s.push_str(&format!("   * {d}\n"));
            }
        }
        s.push_str(&format!("   */\n  {} = {},\n", r.c_name, r.value));
    }
    s.push_str("};\n");
    s
}
