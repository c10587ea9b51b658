//! Compiles the C probes in ebpf/ with clang, links them into BPF objects with
//! bpftool (so probe files share maps), and generates the Rust side of the
//! kernel/user contract from ebpf/include/events.h with bindgen.
//!
//! Two objects: without and with context propagation. Its socket map needs
//! CAP_NET_ADMIN to exist at all, so an agent that does not propagate must not
//! carry it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Probe files, one per concern; linked in this order.
const PROBES: &[&str] = &["sockets", "tcp", "process", "tls", "go_tls"];
/// Linked after [`PROBES`] into the object loaded when context propagation is on.
const PROPAGATION: &str = "propagation";
const MISSING_TOOLS: &str =
    "building the eBPF probes needs clang, bpftool and the libbpf headers: apt-get install clang libbpf-dev bpftool";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let ebpf = manifest.parent().unwrap().join("ebpf");
    let include = ebpf.join("include");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=BPFTOOL");
    for dir in [&include, &ebpf.join("probes")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            println!("cargo:rerun-if-changed={}", entry.unwrap().path().display());
        }
    }

    let arch = match env::var("CARGO_CFG_TARGET_ARCH").unwrap().as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => panic!("unsupported target architecture for the eBPF probes: {other}"),
    };
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists()
        && env::var_os("LIBBPF_INCLUDE").is_none()
    {
        fail(MISSING_TOOLS);
    }
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let mut objects = Vec::new();
    for probe in PROBES.iter().chain([&PROPAGATION]) {
        let src = ebpf.join("probes").join(format!("{probe}.bpf.c"));
        let obj = out.join(format!("{probe}.o"));
        let mut cmd = Command::new(&clang);
        cmd.args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .arg("-I")
            .arg(&include);
        if let Ok(dir) = env::var("LIBBPF_INCLUDE") {
            cmd.arg("-I").arg(dir);
        }
        run(cmd.arg("-c").arg(&src).arg("-o").arg(&obj), "clang");
        objects.push(obj);
    }
    let bpftool = env::var("BPFTOOL").unwrap_or_else(|_| "bpftool".into());
    let link = |name: &str, objects: &[PathBuf]| {
        run(
            Command::new(&bpftool)
                .args(["gen", "object"])
                .arg(out.join(name))
                .args(objects),
            "bpftool",
        )
    };
    link("beyla.bpf.o", &objects[..PROBES.len()]);
    link("beyla-propagation.bpf.o", &objects);

    bindgen::Builder::default()
        .header(include.join("events.h").to_string_lossy())
        .allowlist_type("beyla_.*")
        .allowlist_var("BEYLA_.*")
        .derive_default(true)
        .prepend_enum_name(false)
        .generate()
        .unwrap_or_else(|e| {
            fail(&format!(
                "bindgen could not read ebpf/include/events.h: {e} ({MISSING_TOOLS})"
            ))
        })
        .write_to_file(out.join("events.rs"))
        .unwrap();
}

fn run(cmd: &mut Command, tool: &str) {
    match cmd.status() {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "{tool} failed ({status}) building the eBPF probes"
        )),
        Err(_) => fail(MISSING_TOOLS),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}
