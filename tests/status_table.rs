//! The status table (src/status.rs) is the one source of the status codes: these tests pin
//! what it expands to — the texts of slp_status_str, the Rust names under `slp::ffi`, and the
//! `enum slp_status_code` that build.rs writes into include/slp.h.

use std::ffi::CStr;

use slp::ffi::slp_status_str;
use slp::status::ALL;

fn status_text(s: i32) -> String {
    unsafe { CStr::from_ptr(slp_status_str(s)) }.to_str().unwrap().to_owned()
}

/// The texts users see; they must not change when the table is edited.
#[test]
fn status_str_texts_are_unchanged() {
    let expected = [
        (0, "SLP_OK: success"),
        (-1, "SLP_E_INVALID: invalid argument"),
        (-2, "SLP_E_NOMEM: out of memory"),
        (-3, "SLP_E_STATE: the object's state forbids the call"),
        (-4, "SLP_E_WRONG_THREAD: the call needs the owner thread"),
        (-5, "SLP_E_DEADLOCK: the caller would block and nothing could wake it"),
        (-6, "SLP_E_CLOSED: channel closed"),
        (-7, "SLP_E_KILLED: the calling tasklet was killed"),
        (-8, "SLP_E_TIMEOUT: deadline passed"),
        (-9, "SLP_E_WOULD_BLOCK: the operation would block"),
        (-10, "SLP_E_SWITCH_TRAP: switch_trap is set"),
        (-11, "SLP_E_DEAD: the tasklet is dead"),
        (-12, "SLP_E_PANIC: internal error (panic caught)"),
    ];
    for (code, text) in expected {
        assert_eq!(status_text(code), text, "slp_status_str({code})");
    }
    assert_eq!(ALL.len(), expected.len(), "a new status needs its text pinned here");
    for code in [1, 7, 42, i32::MAX] {
        assert_eq!(status_text(code), "user exception");
    }
    for code in [-13, -100, i32::MIN] {
        assert_eq!(status_text(code), "unknown libslp status");
    }
}

/// Rust code names the statuses as C does (`slp::ffi::SLP_*`), with the core's values.
#[test]
fn ffi_names_are_the_core_constants() {
    use slp::ffi::*;
    use slp::status as st;
    let pairs = [
        (SLP_OK, st::OK, 0),
        (SLP_E_INVALID, st::E_INVALID, -1),
        (SLP_E_NOMEM, st::E_NOMEM, -2),
        (SLP_E_STATE, st::E_STATE, -3),
        (SLP_E_WRONG_THREAD, st::E_WRONG_THREAD, -4),
        (SLP_E_DEADLOCK, st::E_DEADLOCK, -5),
        (SLP_E_CLOSED, st::E_CLOSED, -6),
        (SLP_E_KILLED, st::E_KILLED, -7),
        (SLP_E_TIMEOUT, st::E_TIMEOUT, -8),
        (SLP_E_WOULD_BLOCK, st::E_WOULD_BLOCK, -9),
        (SLP_E_SWITCH_TRAP, st::E_SWITCH_TRAP, -10),
        (SLP_E_DEAD, st::E_DEAD, -11),
        (SLP_E_PANIC, st::E_PANIC, -12),
    ];
    for (c, core, v) in pairs {
        assert_eq!((c, core), (v, v));
    }
}

/// One constant of the header's `enum slp_status_code`: its doc lines, name and value.
#[derive(Debug, PartialEq)]
struct HeaderConst {
    doc: Vec<String>,
    name: String,
    value: i32,
}

fn header_enum() -> (String, Vec<HeaderConst>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/slp.h");
    let h = std::fs::read_to_string(path).unwrap();
    let start = h.find("enum slp_status_code {\n").expect("enum slp_status_code in slp.h");
    let body = &h[start + "enum slp_status_code {\n".len()..];
    let body = &body[..body.find("\n};\n").expect("end of enum slp_status_code")];
    let mut out = Vec::new();
    let mut doc = Vec::new();
    for line in body.lines() {
        let t = line.trim();
        if t == "/**" || t == "*/" {
            continue;
        } else if let Some(d) = t.strip_prefix("* ") {
            doc.push(d.to_owned());
        } else if t == "*" {
            doc.push(String::new());
        } else {
            let (name, value) = t.strip_suffix(',').unwrap().split_once(" = ").unwrap();
            out.push(HeaderConst {
                doc: std::mem::take(&mut doc),
                name: name.to_owned(),
                value: value.parse().unwrap(),
            });
        }
    }
    (h, out)
}

#[test]
fn header_enum_matches_the_table() {
    let (h, consts) = header_enum();
    let from_table: Vec<HeaderConst> = ALL
        .iter()
        .map(|s| HeaderConst {
            doc: s
                .doc
                .iter()
                .map(|d| d.strip_prefix(' ').unwrap_or(d).trim_end().to_owned())
                .collect(),
            name: s.c_name.to_owned(),
            value: s.value,
        })
        .collect();
    assert_eq!(consts, from_table);
    // The enum replaced the old #defines: no second definition of the names.
    for s in ALL {
        assert!(!h.contains(&format!("#define {} ", s.c_name)), "{} is also a #define", s.c_name);
    }
    // The typedef stays int32_t and still says what positive values are.
    assert!(h.contains("typedef int32_t slp_status;"));
    let typedef = h.find("typedef int32_t slp_status;").unwrap();
    let doc = &h[h[..typedef].rfind("/**").unwrap()..typedef];
    assert!(doc.contains("positive user exception code"), "{doc}");
}
